WITH conv AS (
    SELECT conv_id, user_id, conv_date, conv_time, revenue
    FROM conversions
    WHERE conv_date BETWEEN :first_date AND :last_date AND NOT (conversions.conv_id IS NULL OR conversions.user_id IS NULL OR conversions.conv_date IS NULL OR conversions.conv_time IS NULL OR conversions.revenue IS NULL OR ((conversions.conv_date IS NOT NULL AND NOT (CASE WHEN conversions.conv_date ~ '^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$' THEN SUBSTR(conversions.conv_date, 6, 2) BETWEEN '01' AND '12' AND SUBSTR(conversions.conv_date, 9, 2) BETWEEN '01' AND CASE SUBSTR(conversions.conv_date, 6, 2) WHEN '02' THEN CASE WHEN (CAST(SUBSTR(conversions.conv_date, 1, 4) AS INTEGER) % 4 = 0 AND CAST(SUBSTR(conversions.conv_date, 1, 4) AS INTEGER) % 100 <> 0 OR CAST(SUBSTR(conversions.conv_date, 1, 4) AS INTEGER) % 400 = 0) THEN '29' ELSE '28' END WHEN '04' THEN '30' WHEN '06' THEN '30' WHEN '09' THEN '30' WHEN '11' THEN '30' ELSE '31' END ELSE FALSE END))) OR ((conversions.conv_time IS NOT NULL AND NOT ((conversions.conv_time ~ '^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]$' AND conversions.conv_time < '24')))) OR (conversions.revenue IS NOT NULL AND NOT (CAST(conversions.revenue AS VARCHAR) ~ '^(-?([0-9]+(\.[0-9]+)?(e[-+][0-9]+)?|Infinity)|NaN)$')) OR CASE WHEN CAST(conversions.revenue AS VARCHAR) ~ '^(-?([0-9]+(\.[0-9]+)?(e[-+][0-9]+)?|Infinity)|NaN)$' THEN NOT (ABS(CAST(conversions.revenue AS DOUBLE PRECISION)) <= 1000000000000) ELSE FALSE END) AND conversions.conv_id NOT IN (SELECT t.conv_id AS id FROM conversions t WHERE t.conv_date || ' ' || t.conv_time >= :range_start AND t.conv_date || ' ' || t.conv_time < :range_end AND t.conv_id IS NOT NULL GROUP BY t.conv_id HAVING COUNT(*) > 1)
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
       AND NOT (s.user_id IS NULL OR s.event_time IS NULL OR s.holder_engagement IS NULL OR s.closer_engagement IS NULL OR s.impression_interaction IS NULL OR (s.event_time IS NOT NULL AND NOT ((s.event_time ~ '^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]$' AND s.event_time < '24'))) OR CAST(s.holder_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.closer_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.impression_interaction AS VARCHAR) NOT IN ('0', '1'))
    GROUP BY c.conv_date
)
SELECT date, CAST(SUM(sessions) AS BIGINT) AS sessions, CAST(SUM(cost_rows) AS BIGINT) AS cost_rows, CAST(SUM(cost_micros) AS BIGINT) AS cost_micros, CAST(SUM(conversions) AS BIGINT) AS conversions, CAST(SUM(revenue_micros) AS BIGINT) AS revenue_micros, CAST(SUM(journey_sessions) AS BIGINT) AS journey_sessions,
       MAX(last_session) AS last_session, MAX(last_journey_session) AS last_journey_session
FROM parts
GROUP BY date
