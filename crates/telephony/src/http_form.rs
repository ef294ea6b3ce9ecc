//! Form-encoded REST calls with Basic auth and a deadline, shared by both carriers' clients.

use std::time::Duration;

/// What came back: status and body (read in full; carrier responses are small).
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// POSTs `form` to `url` as `user:pass`. Errors name the host, never the credentials.
pub async fn post(http: &reqwest::Client, url: &str, user: &str, pass: &str, form: &[(String, String)], timeout: Duration) -> Result<Reply, String> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter().map(|(k, v)| (k.as_str(), v.as_str()))).finish();
    let resp = http
        .post(url)
        .basic_auth(user, Some(pass))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| e.without_url().to_string())?;
    Ok(Reply { status, body })
}
