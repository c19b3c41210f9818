DROP TABLE crm_event_log;
DROP TABLE crm_event_members;
DROP TRIGGER crm_events_publish;
DROP TABLE crm_events;
