WITH conv AS (
    SELECT conv_id, user_id, conv_date, conv_time, revenue
    FROM conversions
    WHERE conv_date BETWEEN :first_date AND :last_date
),
parts AS (
    SELECT s.event_date AS date, COUNT(*) AS sessions, COUNT(k.session_id) AS cost_rows,
           SUM(CAST(ROUND(COALESCE(k.cost, 0.0) * 1000000) AS BIGINT)) AS cost_micros, 0 AS conversions, 0 AS revenue_micros,
           0 AS journey_sessions, MAX(s.session_id) AS last_session, NULL AS last_journey_session
    FROM session_sources s
    LEFT JOIN session_costs k ON k.session_id = s.session_id
    WHERE s.event_date BETWEEN :first_date AND :last_date
    GROUP BY s.event_date
    UNION ALL
    SELECT conv_date, 0, 0, 0, COUNT(*), SUM(CAST(ROUND(revenue * 1000000) AS BIGINT)), 0, NULL, NULL
    FROM conv
    GROUP BY conv_date
    UNION ALL
    SELECT c.conv_date, 0, 0, 0, 0, 0, COUNT(*), NULL, MAX(s.session_id)
    FROM conv c
    JOIN session_sources s
      ON s.user_id = c.user_id
      AND (s.event_date, s.event_time) < (c.conv_date, c.conv_time)
      
    GROUP BY c.conv_date
)
SELECT date, CAST(SUM(sessions) AS BIGINT) AS sessions, CAST(SUM(cost_rows) AS BIGINT) AS cost_rows, CAST(SUM(cost_micros) AS BIGINT) AS cost_micros, CAST(SUM(conversions) AS BIGINT) AS conversions, CAST(SUM(revenue_micros) AS BIGINT) AS revenue_micros, CAST(SUM(journey_sessions) AS BIGINT) AS journey_sessions,
       MAX(last_session) AS last_session, MAX(last_journey_session) AS last_journey_session
FROM parts
GROUP BY date
