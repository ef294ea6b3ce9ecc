//! Fetches the offline models into the default models directory (same as `callfunnel models fetch`).
fn main() -> anyhow::Result<()> {
    let paths = callfunnel_ai::models::ModelPaths::default();
    let r = callfunnel_ai::models::fetch::fetch_all(&paths, true)?;
    println!("{r:?}");
    Ok(())
}
