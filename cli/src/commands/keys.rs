//! keygen, id, trust, associates.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use octolink::{Identity, NodeAssociate, PublicKey, Role};

use crate::error::{fail, Result};
use crate::home::Home;

pub fn keygen(home: &Home, bits: usize, force: bool) -> Result<()> {
    home.ensure_dir()?;
    let path = home.key_path();
    if path.exists() && !force {
        fail!("{} already exists (use --force to replace it)", path.display());
    }
    let identity = Identity::generate(&mut rand::rngs::OsRng, bits)?;
    identity.save(&path)?;
    std::fs::write(home.public_key_path(), identity.public().to_pem())?;
    println!("node id {}", identity.id());
    println!("private key {} (mode 0600)", path.display());
    println!("public key  {}", home.public_key_path().display());
    Ok(())
}

pub fn id(home: &Home) -> Result<()> {
    let identity = home.identity()?;
    println!("{}", identity.id());
    print!("{}", identity.public().to_pem());
    Ok(())
}

pub fn trust(home: &Home, key: &str, name: &str, addr: Option<SocketAddr>, role: Role) -> Result<()> {
    let pem = if key.contains("-----BEGIN") {
        key.to_string()
    } else {
        std::fs::read_to_string(key)
            .map_err(|e| crate::error::CliError(format!("cannot read key file {key}: {e}")))?
    };
    let public = PublicKey::from_pem(&pem)?;
    home.ensure_dir()?;
    let mut store = home.trust()?;
    let mut assoc = NodeAssociate::new(public, name, role);
    if let Some(a) = addr {
        assoc = assoc.with_address(a);
    }
    let id = assoc.id;
    if let Some(old) = store.get(&id) {
        // Keep the history of a node paired again.
        let mut merged = old.clone();
        merged.name = assoc.name;
        merged.role = role;
        if let Some(a) = addr {
            merged.note_address(a, true, None);
        }
        store.insert(merged)?;
    } else {
        store.insert(assoc)?;
    }
    store.save(&home.associates_path())?;
    println!("trusted {name} ({id})");
    Ok(())
}

fn ago(ms: Option<u64>) -> String {
    let Some(ms) = ms else { return "never".into() };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

pub fn associates(home: &Home) -> Result<()> {
    let store = home.trust()?;
    if store.is_empty() {
        println!("no associates yet: pair with `octolink trust <public key> --name NAME`");
        return Ok(());
    }
    println!(
        "{:<12} {:<10} {:<7} {:<22} {:<10} {:<10} {:<10} {:<10} state",
        "name", "id", "role", "address", "first ok", "first try", "last ok", "last fail"
    );
    for a in store.iter() {
        let state = match (a.last_success_ms, a.last_failure_ms) {
            (None, None) => "never contacted",
            (None, Some(_)) => "unreachable so far",
            (Some(ok), Some(bad)) if bad > ok => "last attempt failed",
            (Some(_), _) => "reachable when last tried",
        };
        println!(
            "{:<12} {:<10} {:<7} {:<22} {:<10} {:<10} {:<10} {:<10} {state}",
            a.name,
            a.id.short(),
            format!("{:?}", a.role).to_lowercase(),
            a.best_address().map_or("-".into(), |x| x.to_string()),
            ago(a.first_success_ms),
            ago(a.first_attempt_ms),
            ago(a.last_success_ms),
            ago(a.last_failure_ms),
        );
    }
    Ok(())
}
