//! Target 3d: `allowedRegistriesForImport` entries and the whitelister (`grammar::import`).
//! No RULEBOOK regex exists for them (globs), so the checks are invariants:
//! - `ImportEntry::parse` never panics and keeps the text (`host[:port]`);
//! - an entry without glob characters admits its own `host:port`;
//! - `admit` with every transport never panics.
//!
//! Input: NUL-separated `domainName` entries; the last piece is the registry to admit.
#![no_main]

use image_config_webhook::grammar::import::{
    ImportAllowList, ImportEntry, Transport, has_glob, registry_host_port,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut pieces: Vec<&str> = text.split('\0').collect();
    let registry = pieces.pop().unwrap_or("");
    let entries: Vec<(usize, &str, bool)> = pieces
        .iter()
        .enumerate()
        .map(|(i, e)| (i, *e, i % 2 == 1))
        .collect();
    for &(_, domain_name, insecure) in &entries {
        if let Ok(entry) = ImportEntry::parse(domain_name, insecure) {
            let rebuilt = if entry.default_port {
                entry.host.to_owned()
            } else {
                format!("{}:{}", entry.host, entry.port)
            };
            assert_eq!(rebuilt, domain_name);
            if !has_glob(entry.host) && !has_glob(entry.port) && !entry.host.is_empty() {
                let alone = ImportAllowList::new([(0, domain_name, insecure)]);
                assert_eq!(
                    alone.admitting(entry.host, entry.port),
                    Some(0),
                    "{domain_name:?} does not admit itself"
                );
            }
        }
    }
    let list = ImportAllowList::new(entries.iter().copied()).with_internal(registry);
    for transport in [Transport::Secure, Transport::Insecure, Transport::Any] {
        let _ = list.admit(registry, transport);
    }
    let _ = registry_host_port(registry, false);
    let _ = registry_host_port(registry, true);
});
