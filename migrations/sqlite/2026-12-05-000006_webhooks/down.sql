DROP TRIGGER crm_events_fan_out;
DROP TABLE crm_webhook_deliveries;
DROP TABLE crm_webhook_endpoints;
