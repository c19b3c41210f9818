DROP TRIGGER oauth_tokens_notify_deleted ON oauth_tokens;
DROP FUNCTION crm_notify_token_deleted();
