-- How many reactions a message has, kept in the reaction's transaction: a page of history
-- asks for the reactions of only the messages that have some (most have none), instead of
-- one more query per page.
ALTER TABLE channels_messages ADD COLUMN reaction_count INTEGER NOT NULL DEFAULT 0;
UPDATE channels_messages
SET reaction_count = (SELECT COUNT(*) FROM channels_reactions r WHERE r.message_id = channels_messages.id)
WHERE id IN (SELECT message_id FROM channels_reactions);
