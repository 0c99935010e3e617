WITH conv AS (
    SELECT conv_id, user_id, conv_date, conv_time, revenue
    FROM conversions
    WHERE conv_date || ' ' || conv_time >= :range_start
      AND conv_date || ' ' || conv_time < :range_end
      AND (conv_date, conv_time, conv_id) > (:after_date, :after_time, :after_id)
      AND NOT EXISTS (SELECT 1 FROM attribution_customer_journey a WHERE a.conv_id = conversions.conv_id AND a.model = :credit_model AND a.conv_type_id = :credit_conv_type)
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
      AND s.event_date || ' ' || s.event_time >= datetime(c.conv_date || ' ' || c.conv_time, '-30 days')AND s.impression_interaction = 0
ORDER BY c.conv_date, c.conv_time, c.conv_id, s.event_date, s.event_time, s.session_id
