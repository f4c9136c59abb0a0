-- The write transaction the webhook runs per message since run 6 (Core hot path), as pgbench
-- statements (simple protocol). Run:
--   pgbench -n -c 8 -j 2 -T 20 -D customers=8000 -f bench/webhook/ingest_v2.sql <migrated db>
-- The statements ai_customer_service.conversation.repository sends for a text message answered
-- by the dialog (no handoff, rate limit enabled, steady state: the session exists), with the same
-- JSONB payload sizes as ingest.sql. Same rows written as ingest.sql; 3 statements between BEGIN
-- and COMMIT instead of 10 (and no read-only lookup before BEGIN). No SQLAlchemy/Python work.
\set cust random(0, :customers - 1)
\set mid random(1, 9000000000000000)
BEGIN;
-- 1. lock the customer's open session
SELECT id AS sid, channel, open_id, user_id, platform, status, low_confidence_streak, last_message_at FROM cs_sessions WHERE channel = 'widget' AND open_id = 'bench-' || :cust AND source = '' AND status != 'closed' FOR UPDATE \gset
-- 2. under the lock: dedup record, rate-limit count, ticket state, in one statement
SELECT (SELECT response FROM cs_message_dedup WHERE source = '' AND channel = 'widget' AND message_id = 'pg-' || :client_id || '-' || :mid) AS duplicate_response, recent.n, recent.oldest, (SELECT id FROM cs_tickets WHERE session_id = ':sid' AND status IN ('open', 'assigned', 'processing')) AS active_ticket_id, (SELECT status FROM cs_tickets WHERE session_id = ':sid' ORDER BY created_at DESC LIMIT 1) AS latest_ticket_status FROM (SELECT count(*) AS n, min(created_at) AS oldest FROM cs_messages WHERE session_id = ':sid' AND direction = 'inbound' AND created_at > now() - interval '10 seconds') AS recent;
-- 3. both messages, the audit row and the dedup record as CTEs of the session UPDATE
WITH m0 AS (INSERT INTO cs_messages (id, session_id, direction, author_type, author_id, channel_message_id, content, content_type, truncated, reply_to, sent_at, intent, confidence, citations, decision, latency_ms, created_at) VALUES (gen_random_uuid(), ':sid', 'inbound', 'customer', 'bench-' || :cust, 'pg-' || :client_id || '-' || :mid, 'How do I reset my API key?', 'text', false, NULL, NULL, NULL, NULL, NULL, NULL, NULL, now())),
m1 AS (INSERT INTO cs_messages (id, session_id, direction, author_type, author_id, channel_message_id, content, content_type, truncated, reply_to, sent_at, intent, confidence, citations, decision, latency_ms, created_at) VALUES (gen_random_uuid(), ':sid', 'outbound', 'bot', NULL, NULL, 'Hi! I''m the virtual assistant. Ask me about accounts, API keys, quotas or billing; reply "human agent" to talk to a person.', 'text', false, gen_random_uuid()::text, NULL, 'faq_fallback', 0.0, '[]'::jsonb, '{"kind": "answer", "reason": "fallback", "intent": "faq_fallback", "confidence": 0.0, "priority": null, "latency_ms": 0.05}'::jsonb, 0.05, now() + interval '1 microsecond')),
a AS (INSERT INTO cs_audit_logs (id, object_type, object_id, action, actor_type, actor_id, before_state, after_state, code, request_id, details, created_at) VALUES (gen_random_uuid(), 'message_processed', ':sid', 'process', 'customer', 'bench-' || :cust, '{}', '{"intent": "fallback", "reply": "bench"}', NULL, md5(random()::text), ('{"message_id": "' || gen_random_uuid() || '", "channel_message_id": "pg-' || :client_id || '-' || :mid || '", "source": null, "decision": "fallback", "ticket_id": null}')::jsonb, now())),
d AS (INSERT INTO cs_message_dedup (id, source, channel, message_id, session_id, response, created_at) VALUES (gen_random_uuid(), '', 'widget', 'pg-' || :client_id || '-' || :mid, ':sid', '{"received": true, "session_id": "00000000-0000-0000-0000-000000000000", "message_id": "00000000-0000-0000-0000-000000000000", "reply": "Hi! I''m the virtual assistant. Ask me about accounts, API keys, quotas or billing; reply \"human agent\" to talk to a person.", "intent": "faq_fallback", "confidence": 0.0, "handoff": false, "ticket_id": "", "citations": [], "duplicate": false}', now()))
UPDATE cs_sessions SET user_id = NULL, platform = NULL, status = 'idle', low_confidence_streak = 1, updated_at = now(), last_message_at = now() WHERE id = ':sid';
COMMIT;
