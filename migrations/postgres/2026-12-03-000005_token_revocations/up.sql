-- Server instances keep validated access tokens in memory. Deleting a token
-- that has not expired yet (a revocation, the deletion of its client, the
-- per-client cap) tells every instance at commit, so none serves it again.
CREATE FUNCTION crm_notify_token_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.expires_at > now() THEN
        PERFORM pg_notify('crm_token_revoked', OLD.token_hash);
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER oauth_tokens_notify_deleted
    AFTER DELETE ON oauth_tokens
    FOR EACH ROW EXECUTE FUNCTION crm_notify_token_deleted();
