WITH buyers AS (
    SELECT DISTINCT user_id FROM conversions WHERE user_id IS NOT NULL
),
sessions AS (
    SELECT s.user_id AS path_id, s.event_date || ' ' || s.event_time AS timestamp, s.session_id, s.channel_name
    FROM session_sources s
    LEFT JOIN buyers b ON b.user_id = s.user_id
    WHERE b.user_id IS NULL AND s.user_id IS NOT NULL AND s.event_date || ' ' || s.event_time >= :range_start AND s.event_date || ' ' || s.event_time < :range_end AND NOT (s.user_id IS NULL OR s.event_time IS NULL OR s.holder_engagement IS NULL OR s.closer_engagement IS NULL OR s.impression_interaction IS NULL OR (s.event_time IS NOT NULL AND NOT ((s.event_time ~ '^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]$' AND s.event_time < '24'))) OR CAST(s.holder_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.closer_engagement AS VARCHAR) NOT IN ('0', '1') OR CAST(s.impression_interaction AS VARCHAR) NOT IN ('0', '1'))
)
SELECT path_id, timestamp, session_id, channel_name FROM sessions
