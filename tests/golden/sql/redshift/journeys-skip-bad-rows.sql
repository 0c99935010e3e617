WITH conv AS (
    SELECT conv_id, user_id, conv_date, conv_time, revenue
    FROM conversions
    WHERE conv_date || ' ' || conv_time >= :range_start
      AND conv_date || ' ' || conv_time < :range_end
      AND conv_date >= :after_date AND (conv_date > :after_date OR conv_time >= :after_time AND (conv_time > :after_time OR conv_id > :after_id))
       AND NOT (conversions.conv_id IS NULL OR conversions.user_id IS NULL OR conversions.conv_date IS NULL OR conversions.conv_time IS NULL OR conversions.revenue IS NULL OR ((conversions.conv_date IS NOT NULL AND NOT (CASE WHEN conversions.conv_date ~ '^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$' THEN SUBSTR(conversions.conv_date, 6, 2) BETWEEN '01' AND '12' AND SUBSTR(conversions.conv_date, 9, 2) BETWEEN '01' AND CASE SUBSTR(conversions.conv_date, 6, 2) WHEN '02' THEN CASE WHEN (CAST(SUBSTR(conversions.conv_date, 1, 4) AS INTEGER) % 4 = 0 AND CAST(SUBSTR(conversions.conv_date, 1, 4) AS INTEGER) % 100 <> 0 OR CAST(SUBSTR(conversions.conv_date, 1, 4) AS INTEGER) % 400 = 0) THEN '29' ELSE '28' END WHEN '04' THEN '30' WHEN '06' THEN '30' WHEN '09' THEN '30' WHEN '11' THEN '30' ELSE '31' END ELSE FALSE END))) OR ((conversions.conv_time IS NOT NULL AND NOT ((conversions.conv_time ~ '^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]$' AND conversions.conv_time < '24')))) OR (conversions.revenue IS NOT NULL AND NOT (CAST(conversions.revenue AS VARCHAR) ~ '^(-?([0-9]+(\.[0-9]+)?(e[-+][0-9]+)?|Infinity)|NaN)$')) OR CASE WHEN CAST(conversions.revenue AS VARCHAR) ~ '^(-?([0-9]+(\.[0-9]+)?(e[-+][0-9]+)?|Infinity)|NaN)$' THEN NOT (ABS(CAST(conversions.revenue AS DOUBLE PRECISION)) <= 1000000000000) ELSE FALSE END) AND conversions.conv_id NOT IN (SELECT t.conv_id AS id FROM conversions t WHERE t.conv_date || ' ' || t.conv_time >= :range_start AND t.conv_date || ' ' || t.conv_time < :range_end AND t.conv_id IS NOT NULL GROUP BY t.conv_id HAVING COUNT(*) > 1)
    ORDER BY conv_date, conv_time, conv_id
    LIMIT :chunk
)
SELECT c.conv_id, c.conv_date || ' ' || c.conv_time AS conv_ts, c.revenue,
       s.session_id, s.event_date || ' ' || s.event_time AS timestamp, s.channel_name,
       s.holder_engagement, s.closer_engagement, s.impression_interaction
FROM conv c
LEFT JOIN session_sources s
       ON s.user_id = c.user_id
      AND s.event_date <= c.conv_date AND (s.event_date < c.conv_date OR s.event_time < c.conv_time)
       AND NOT (s.user_id IS NULL OR s.event_time IS NULL OR s.holder_engagement IS NULL OR s.closer_engagement IS NULL OR s.impression_interaction IS NULL OR (s.event_time IS NOT NULL AND NOT ((s.event_time ~ '^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]$' AND s.event_time < '24'))) OR CAST(s.holder_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.closer_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.impression_interaction AS VARCHAR) NOT IN ('0', '1'))
ORDER BY c.conv_date, c.conv_time, c.conv_id, s.event_date, s.event_time, s.session_id
