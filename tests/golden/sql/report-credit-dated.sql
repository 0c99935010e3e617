SELECT a.channel_name, a.event_date AS date, a.ihc, a.ihc * v.revenue AS ihc_revenue
FROM attribution_customer_journey a
JOIN conversions v ON v.conv_id = a.conv_id
WHERE a.model = :model AND a.conv_type_id = :conv_type_id AND a.event_date IN :dates
