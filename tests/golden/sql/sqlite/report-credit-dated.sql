SELECT s.channel_name, s.event_date AS date, SUM(a.ihc) AS ihc, SUM(a.ihc * v.revenue) AS ihc_revenue
FROM (SELECT conv_id, session_id, ihc FROM attribution_customer_journey ORDER BY session_id, conv_id) AS a
JOIN session_sources s ON s.session_id = a.session_id
JOIN conversions v ON v.conv_id = a.conv_id
WHERE s.event_date IN :dates
GROUP BY s.channel_name, s.event_date
