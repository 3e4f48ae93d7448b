-- A channel's top-level messages by sequence number: exactly what a page of history reads,
-- so the newest page is a short backwards walk of one index on either engine, whatever the
-- planner's statistics say (before its first ANALYZE, PostgreSQL intersected two indexes
-- over every message of the channel and sorted them, 6 ms a page at 12,000 messages).
CREATE INDEX channels_messages_roots ON channels_messages (channel_id, seq) WHERE thread_root_id IS NULL;
