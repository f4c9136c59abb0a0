-- The write transaction the webhook runs per message, as pgbench statements (simple protocol).
-- Run: pgbench -n -c 8 -j 2 -T 20 -D customers=8000 -f bench/webhook/ingest.sql <migrated db>
-- Same statements, same tables and indexes, same JSONB payload sizes as
-- ai_customer_service.webhook.service.IngestService for a text message answered by the rules
-- dialog (no handoff), rate limit enabled. Differences from the service, on purpose:
--  * the session "upsert" (INSERT ... ON CONFLICT DO NOTHING) runs every time; the service runs it
--    only when the SELECT ... FOR UPDATE finds no open session (first message of a customer), so
--    this script does one statement more than the service's steady state;
--  * no pool pre-ping round trips and no SQLAlchemy/Python work, by definition.
\set cust random(0, :customers - 1)
\set mid random(1, 9000000000000000)
-- 1. outside the transaction: the read-only dedup lookup (duplicates are answered from it)
SELECT response FROM cs_message_dedup WHERE source = '' AND channel = 'widget' AND message_id = 'pg-' || :client_id || '-' || :mid;
BEGIN;
-- 2. claim the dedup key
INSERT INTO cs_message_dedup (id, source, channel, message_id, created_at) VALUES (gen_random_uuid(), '', 'widget', 'pg-' || :client_id || '-' || :mid, now()) ON CONFLICT (source, channel, message_id) DO NOTHING RETURNING id;
-- 3. find-or-create the customer's open session, locked
INSERT INTO cs_sessions (id, channel, open_id, user_id, status, low_confidence_streak, created_at, updated_at, last_message_at) VALUES (gen_random_uuid(), 'widget', 'bench-' || :cust, NULL, 'idle', 0, now(), now(), now()) ON CONFLICT (channel, open_id, source) WHERE status <> 'closed' DO NOTHING RETURNING id;
SELECT id AS sid, channel, open_id, user_id, status, low_confidence_streak, created_at, updated_at, last_message_at, closed_at, close_reason FROM cs_sessions WHERE channel = 'widget' AND open_id = 'bench-' || :cust AND source = '' AND status <> 'closed' FOR UPDATE \gset
-- 4. rate limit: recent inbound messages of the session
SELECT count(*), min(created_at) FROM cs_messages WHERE session_id = ':sid' AND direction = 'inbound' AND created_at > now() - interval '10 seconds';
-- 5. dedup response (the service's ORM flush order puts this UPDATE before the inserts)
UPDATE cs_message_dedup SET session_id = ':sid', response = '{"received": true, "session_id": "00000000-0000-0000-0000-000000000000", "message_id": "00000000-0000-0000-0000-000000000000", "reply": "Hi! I''m the virtual assistant. Ask me about accounts, API keys, quotas or billing; reply \"human agent\" to talk to a person.", "intent": "faq_fallback", "confidence": 0.0, "handoff": false, "ticket_id": "", "citations": [], "duplicate": false}' WHERE source = '' AND channel = 'widget' AND message_id = 'pg-' || :client_id || '-' || :mid;
-- 6. audit row
INSERT INTO cs_audit_logs (id, object_type, object_id, action, actor_type, actor_id, before_state, after_state, code, request_id, details, created_at) VALUES (gen_random_uuid(), 'message_processed', ':sid', 'process', 'customer', 'bench-' || :cust, '{}', '{"intent": "fallback", "reply": "bench"}', NULL, md5(random()::text), ('{"message_id": "' || gen_random_uuid() || '", "channel_message_id": "pg-' || :client_id || '-' || :mid || '", "source": null, "decision": "fallback", "ticket_id": null}')::jsonb, now());
-- 7. inbound and outbound messages
INSERT INTO cs_messages (id, session_id, direction, author_type, author_id, channel_message_id, content, content_type, truncated, reply_to, sent_at, intent, confidence, latency_ms, created_at) VALUES (gen_random_uuid(), ':sid', 'inbound', 'customer', 'bench-' || :cust, 'pg-' || :client_id || '-' || :mid, 'How do I reset my API key?', 'text', false, NULL, NULL, NULL, NULL, NULL, now());
INSERT INTO cs_messages (id, session_id, direction, author_type, author_id, channel_message_id, content, content_type, truncated, reply_to, sent_at, intent, confidence, citations, decision, latency_ms, created_at) VALUES (gen_random_uuid(), ':sid', 'outbound', 'bot', NULL, NULL, 'Hi! I''m the virtual assistant. Ask me about accounts, API keys, quotas or billing; reply "human agent" to talk to a person.', 'text', false, gen_random_uuid()::text, NULL, 'faq_fallback', 0.0, '[]'::jsonb, '{"kind": "answer", "reason": "fallback", "intent": "faq_fallback", "confidence": 0.0, "priority": null, "latency_ms": 0.05}'::jsonb, 0.05, now() + interval '1 microsecond');
-- 8. session bookkeeping (the ORM's flush of last_message_at/updated_at)
UPDATE cs_sessions SET updated_at = now(), last_message_at = now() WHERE id = ':sid';
COMMIT;
