DROP TABLE crm_event_log;
DROP TABLE crm_event_members;
DROP TABLE crm_events;
