WITH conv AS (
    SELECT conv_id, user_id, conv_date, conv_time, revenue
    FROM conversions
    WHERE conv_date || ' ' || conv_time >= :range_start
      AND conv_date || ' ' || conv_time < :range_end
      AND (conv_date, conv_time, conv_id) > (:after_date, :after_time, :after_id)
       AND NOT (conversions.conv_id IS NULL OR conversions.user_id IS NULL OR conversions.conv_date IS NULL OR conversions.conv_time IS NULL OR conversions.revenue IS NULL OR ((conversions.conv_date IS NOT NULL AND NOT (date(conversions.conv_date, '+0 days') IS conversions.conv_date))) OR ((conversions.conv_time IS NOT NULL AND NOT ((conversions.conv_time GLOB '[0-2][0-9]:[0-5][0-9]:[0-5][0-9]' AND conversions.conv_time < '24')))) OR (conversions.revenue IS NOT NULL AND NOT (typeof(conversions.revenue) IN ('integer', 'real'))) OR CASE WHEN typeof(conversions.revenue) IN ('integer', 'real') THEN NOT (ABS(CAST(conversions.revenue AS DOUBLE PRECISION)) <= 1000000000000) ELSE FALSE END) AND conversions.conv_id NOT IN (SELECT t.conv_id AS id FROM conversions t WHERE t.conv_date || ' ' || t.conv_time >= :range_start AND t.conv_date || ' ' || t.conv_time < :range_end AND t.conv_id IS NOT NULL GROUP BY t.conv_id HAVING COUNT(*) > 1)
    ORDER BY conv_date, conv_time, conv_id
    LIMIT :chunk
)
SELECT c.conv_id, c.conv_date || ' ' || c.conv_time AS conv_ts, c.revenue,
       s.session_id, s.event_date || ' ' || s.event_time AS timestamp, s.channel_name,
       s.holder_engagement, s.closer_engagement, s.impression_interaction
FROM conv c
LEFT JOIN session_sources s
       ON s.user_id = c.user_id
      AND (s.event_date, s.event_time) < (c.conv_date, c.conv_time)
       AND NOT (s.user_id IS NULL OR s.event_time IS NULL OR s.holder_engagement IS NULL OR s.closer_engagement IS NULL OR s.impression_interaction IS NULL OR (s.event_time IS NOT NULL AND NOT ((s.event_time GLOB '[0-2][0-9]:[0-5][0-9]:[0-5][0-9]' AND s.event_time < '24'))) OR CAST(s.holder_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.closer_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.impression_interaction AS VARCHAR) NOT IN ('0', '1'))
ORDER BY c.conv_date, c.conv_time, c.conv_id, s.event_date, s.event_time, s.session_id
