WITH buyers AS (
    SELECT DISTINCT user_id FROM conversions WHERE user_id IS NOT NULL
),
sessions AS (
    SELECT s.user_id AS path_id, s.event_date || ' ' || s.event_time AS timestamp, s.session_id, s.channel_name
    FROM session_sources s
    LEFT JOIN buyers b ON b.user_id = s.user_id
    WHERE b.user_id IS NULL AND s.user_id IS NOT NULL AND s.event_date || ' ' || s.event_time >= :range_start AND s.event_date || ' ' || s.event_time < :range_end AND s.impression_interaction = 0
),
cut AS (
    SELECT path_id, timestamp, session_id, channel_name, MAX(timestamp) OVER (PARTITION BY path_id) AS last_ts
    FROM sessions
)
SELECT path_id, timestamp, session_id, channel_name
FROM cut
WHERE timestamp >= to_char(CAST(last_ts AS timestamp) - INTERVAL '30 days', 'YYYY-MM-DD HH24:MI:SS')
