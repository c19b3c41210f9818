//! Data written through the API on SQLite survives a restart of the server.

use std::net::TcpListener;

use crm_server::{Backend, Settings};
use crm_tests::json;

async fn serve(path: &str) -> (String, actix_web::dev::ServerHandle, Backend) {
    let mut settings = Settings::new(path);
    settings.workers = Some(1);
    crm_server::Backend::migrate(&settings).expect("migrate");
    let backend = Backend::open(&settings).expect("open");
    let again = Backend::open(&settings).expect("open");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let running = crm_server::build(&settings, backend, listener).expect("build");
    actix_web::rt::spawn(running.server);
    (format!("http://{}", running.addr), running.handle, again)
}

#[actix_web::test]
async fn data_survives_a_server_restart() {
    let dir = std::env::temp_dir().join(format!("crm_restart_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crm.sqlite3");
    let path = path.to_str().unwrap();
    let http = reqwest::Client::new();

    let (base, handle, backend) = serve(path).await;
    let settings = Settings::new(path);
    let client = backend
        .services(&settings)
        .auth
        .create_client("restart", "crm:read crm:write")
        .await
        .unwrap();
    let token = |base: String| {
        let http = http.clone();
        let (id, secret) = (client.client.id.clone(), client.secret.expose().to_owned());
        async move {
            let body: serde_json::Value = http
                .post(format!("{base}/oauth/token/"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let first_token = token(base.clone()).await;
    let created: serde_json::Value = http
        .post(format!("{base}/api/crm/customer/"))
        .bearer_auth(&first_token)
        .json(&json!({"full_name": "Persisted", "mobile": "13900000000", "tags": ["kept"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    handle.stop(true).await;
    drop(backend);

    let (base, handle, _backend) = serve(path).await;
    // The client and its token were stored too.
    let read: serde_json::Value = http
        .get(format!("{base}/api/crm/customer/{id}/"))
        .bearer_auth(&first_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["full_name"], "Persisted");
    assert_eq!(read["tags"], json!(["kept"]));
    assert_eq!(read["created_at"], created["created_at"]);
    handle.stop(true).await;
    let _ = std::fs::remove_dir_all(&dir);
}
