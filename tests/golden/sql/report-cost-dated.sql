SELECT s.channel_name, s.event_date AS date,
       CAST(SUM(CAST(ROUND(COALESCE(c.cost, 0.0) * 1000000) AS BIGINT)) AS DOUBLE PRECISION) / 1000000 AS cost
FROM session_sources s
LEFT JOIN session_costs c ON c.session_id = s.session_id
WHERE s.event_date IN :dates
GROUP BY s.event_date, s.channel_name
