//! Secrets: the [`SecretStore`] trait, an in-memory store, a store encrypted at rest, the access
//! context every read is checked against, and the append-only audit log.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// Who is asking: every secret read is decided and audited against this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessContext {
    /// The caller or tenant; secrets are stored per tenant.
    pub tenant: String,
    /// The deployed function running, if any.
    pub function: Option<String>,
    /// This execution's id.
    pub execution_id: String,
}

impl AccessContext {
    /// The `default` tenant, no function, a fresh execution id.
    pub fn anonymous() -> Self {
        AccessContext {
            tenant: "default".into(),
            function: None,
            execution_id: new_execution_id(),
        }
    }
}

/// A fresh execution id: 16 bytes in hex. The first 6 are the time in milliseconds since the
/// epoch, so ids sort by creation and a store's index on them grows at its end (random ids made
/// every insert touch a random page of the index); the other 10 come from
/// [`palisade_core::rng::unpredictable_u64`], so ids are unique and cannot be guessed from one
/// another, without a system call per id.
pub fn new_execution_id() -> String {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let (a, b) = (
        palisade_core::rng::unpredictable_u64(),
        palisade_core::rng::unpredictable_u64(),
    );
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6..14].copy_from_slice(&a.to_le_bytes());
    bytes[14..].copy_from_slice(&b.to_le_bytes()[..2]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for x in bytes {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 15)]));
    }
    out
}

/// A stored secret: its value and, optionally, the functions allowed to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretEntry {
    /// The value.
    pub value: String,
    /// `None`: any function of the tenant (and direct executions) may read it. `Some`: only these
    /// deployed functions.
    pub functions: Option<BTreeSet<String>>,
}

impl fmt::Debug for SecretEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretEntry")
            .field("value", &"[REDACTED]")
            .field("functions", &self.functions)
            .finish()
    }
}

/// Why a store failed (not a denial: a broken store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Reading or writing the file failed.
    #[error("secret store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a secret store, or was written with another key, or was tampered with.
    #[error("secret store {path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The master key is missing or malformed.
    #[error("master key: {0}")]
    Key(String),
    /// A value the store cannot hold, such as a function name with a comma.
    #[error("secret store: {0}")]
    Invalid(String),
}

/// Where secrets live. Implementations only look up; access control and auditing are the
/// host's, the same for every store.
pub trait SecretStore: Send + Sync + fmt::Debug {
    /// The secret `name` of `tenant`, if there is one.
    fn lookup(&self, tenant: &str, name: &str) -> Result<Option<SecretEntry>, SecretError>;
}

/// Secrets held in memory (tests, embedding).
#[derive(Debug, Default)]
pub struct MemorySecretStore {
    entries: Mutex<BTreeMap<(String, String), SecretEntry>>,
}

impl MemorySecretStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` as `tenant`'s secret `name`, readable by every function of the tenant.
    pub fn insert(&self, tenant: &str, name: &str, value: &str) {
        self.insert_entry(
            tenant,
            name,
            SecretEntry {
                value: value.into(),
                functions: None,
            },
        );
    }

    /// Stores an entry.
    pub fn insert_entry(&self, tenant: &str, name: &str, entry: SecretEntry) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((tenant.into(), name.into()), entry);
    }
}

impl SecretStore for MemorySecretStore {
    fn lookup(&self, tenant: &str, name: &str) -> Result<Option<SecretEntry>, SecretError> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant.to_owned(), name.to_owned()))
            .cloned())
    }
}

/// The environment variable holding the master key of [`FileSecretStore`]: 32 bytes, base64.
pub const MASTER_KEY_ENV: &str = "PALISADE_MASTER_KEY";

/// A 256-bit key for [`FileSecretStore`].
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// Parses 32 bytes in standard base64.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| SecretError::Key(format!("not base64: {e}")))?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            SecretError::Key(format!("{} bytes; a master key is 32 bytes", b.len()))
        })?;
        Ok(MasterKey(key))
    }

    /// Reads [`MASTER_KEY_ENV`].
    pub fn from_env() -> Result<Self, SecretError> {
        let text = std::env::var(MASTER_KEY_ENV).map_err(|_| {
            SecretError::Key(format!(
                "{MASTER_KEY_ENV} is not set (32 random bytes in base64, e.g. `openssl rand -base64 32`)"
            ))
        })?;
        Self::from_base64(&text)
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| SecretError::Key(e.to_string()))?;
        Ok(MasterKey(key))
    }

    /// The key in base64, to put in [`MASTER_KEY_ENV`].
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    secrets: Vec<StoredSecret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSecret {
    tenant: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    functions: Option<BTreeSet<String>>,
    /// 24-byte XChaCha20 nonce, base64.
    nonce: String,
    /// Ciphertext and tag, base64. The associated data binds it to its tenant, name and function
    /// list, so entries cannot be swapped or widened without the key. Nothing binds an entry to
    /// its version: whoever can write the file can put back an earlier value of the same entry.
    ciphertext: String,
}

/// The associated data of an entry. The function list is joined with commas, so no function
/// name may contain one ([`FileSecretStore::put`] refuses it, and an entry that has one does not
/// open): otherwise `["a,b"]` and `["a", "b"]` would share their associated data, and editing
/// the file could widen an entry.
fn associated_data(tenant: &str, name: &str, functions: Option<&BTreeSet<String>>) -> Vec<u8> {
    let functions = functions.map(|f| f.iter().cloned().collect::<Vec<_>>().join(","));
    serde_json::to_vec(&(tenant, name, functions)).unwrap_or_default()
}

fn has_comma(functions: Option<&BTreeSet<String>>) -> bool {
    functions.is_some_and(|f| f.iter().any(|n| n.contains(',')))
}

/// Secrets in a JSON file, each value encrypted with XChaCha20-Poly1305 under a master key from
/// the environment. Plaintext exists only in memory, only while a value is handed out.
pub struct FileSecretStore {
    path: PathBuf,
    cipher: XChaCha20Poly1305,
    file: Mutex<StoreFile>,
}

impl fmt::Debug for FileSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSecretStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileSecretStore {
    /// Opens (or, if missing, starts) the store at `path`. Every entry is checked against the
    /// key now, so a wrong key or a tampered file fails here rather than at first use.
    pub fn open(path: impl Into<PathBuf>, key: &MasterKey) -> Result<Self, SecretError> {
        let path = path.into();
        let cipher = XChaCha20Poly1305::new((&key.0).into());
        let file = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<StoreFile>(&bytes).map_err(|e| SecretError::Corrupt {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StoreFile {
                version: 1,
                secrets: Vec::new(),
            },
            Err(source) => return Err(SecretError::Io { path, source }),
        };
        if file.version != 1 {
            return Err(SecretError::Corrupt {
                path,
                message: format!("unknown version {}", file.version),
            });
        }
        let store = FileSecretStore {
            path,
            cipher,
            file: Mutex::new(file),
        };
        let entries = store.lock().secrets.clone();
        for s in &entries {
            store.decrypt(s)?;
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreFile> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn corrupt(&self, message: impl Into<String>) -> SecretError {
        SecretError::Corrupt {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn decrypt(&self, s: &StoredSecret) -> Result<String, SecretError> {
        let nonce = B64
            .decode(&s.nonce)
            .map_err(|_| self.corrupt(format!("secret {:?}: bad nonce", s.name)))?;
        if nonce.len() != 24 {
            return Err(self.corrupt(format!("secret {:?}: bad nonce", s.name)));
        }
        let ct = B64
            .decode(&s.ciphertext)
            .map_err(|_| self.corrupt(format!("secret {:?}: bad ciphertext", s.name)))?;
        if has_comma(s.functions.as_ref()) {
            return Err(self.corrupt(format!(
                "secret {:?} of tenant {:?}: a function name with a comma (tampered file)",
                s.name, s.tenant
            )));
        }
        let aad = associated_data(&s.tenant, &s.name, s.functions.as_ref());
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ct, aad: &aad })
            .map_err(|_| {
                self.corrupt(format!(
                    "secret {:?} of tenant {:?} does not decrypt: wrong master key or tampered file",
                    s.name, s.tenant
                ))
            })?;
        String::from_utf8(plain).map_err(|_| self.corrupt("a secret is not UTF-8"))
    }

    /// Stores (or replaces) a secret and rewrites the file atomically.
    pub fn put(
        &self,
        tenant: &str,
        name: &str,
        value: &str,
        functions: Option<BTreeSet<String>>,
    ) -> Result<(), SecretError> {
        if has_comma(functions.as_ref()) {
            return Err(SecretError::Invalid(
                "a function name cannot contain a comma".into(),
            ));
        }
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Key(e.to_string()))?;
        let aad = associated_data(tenant, name, functions.as_ref());
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| self.corrupt("encryption failed"))?;
        let mut file = self.lock();
        file.secrets
            .retain(|s| !(s.tenant == tenant && s.name == name));
        file.secrets.push(StoredSecret {
            tenant: tenant.into(),
            name: name.into(),
            functions,
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ct),
        });
        let bytes = serde_json::to_vec_pretty(&*file).map_err(|e| self.corrupt(e.to_string()))?;
        write_atomically(&self.path, &bytes).map_err(|source| SecretError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

impl SecretStore for FileSecretStore {
    fn lookup(&self, tenant: &str, name: &str) -> Result<Option<SecretEntry>, SecretError> {
        let found = self
            .lock()
            .secrets
            .iter()
            .find(|s| s.tenant == tenant && s.name == name)
            .cloned();
        match found {
            None => Ok(None),
            Some(s) => Ok(Some(SecretEntry {
                value: self.decrypt(&s)?,
                functions: s.functions,
            })),
        }
    }
}

/// How a secret access ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessResult {
    /// The value was handed to the guest.
    Granted,
    /// The policy or the secret's function list refused it.
    Denied,
    /// The tenant has no such secret.
    NotFound,
    /// The store failed.
    Error,
}

/// One line of the audit log. Never holds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    /// Always `secret.get` for now.
    pub action: String,
    /// The tenant.
    pub tenant: String,
    /// The function, if any.
    pub function: Option<String>,
    /// The execution.
    pub execution_id: String,
    /// The secret's name.
    pub secret: String,
    /// The decision.
    pub result: AccessResult,
    /// Why, when not granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where audit records go.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Appends one record. A failure to audit must fail the access (the host denies it).
    fn append(&self, record: &AuditRecord) -> std::io::Result<()>;
}

/// An append-only JSON-lines file: one record per line, written with one `write` on a file
/// opened in append mode, so concurrent writers never interleave within a line.
#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }
}

impl AuditSink for AuditLog {
    fn append(&self, record: &AuditRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        f.write_all(&line)?;
        f.flush()
    }
}

/// Audit records kept in memory (tests, embedding).
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<AuditRecord>>,
}

impl MemoryAudit {
    /// The records so far.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl AuditSink for MemoryAudit {
    fn append(&self, record: &AuditRecord) -> std::io::Result<()> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record.clone());
        Ok(())
    }
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_and_detects_a_wrong_key_or_tampering() {
        let dir = std::env::temp_dir().join(format!("palisade-secrets-{}", new_execution_id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.json");
        let key = MasterKey::generate().unwrap();
        let store = FileSecretStore::open(&path, &key).unwrap();
        store.put("acme", "API_KEY", "s3cr3t-value", None).unwrap();
        let only = Some(["billing".to_owned()].into_iter().collect());
        store.put("acme", "DB", "hunter2", only).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("s3cr3t") && !text.contains("hunter2"),
            "{text}"
        );

        let again =
            FileSecretStore::open(&path, &MasterKey::from_base64(&key.to_base64()).unwrap())
                .unwrap();
        let e = again.lookup("acme", "API_KEY").unwrap().unwrap();
        assert_eq!(e.value, "s3cr3t-value");
        assert_eq!(again.lookup("other", "API_KEY").unwrap(), None);
        assert!(again
            .lookup("acme", "DB")
            .unwrap()
            .unwrap()
            .functions
            .is_some());

        let wrong = FileSecretStore::open(&path, &MasterKey::generate().unwrap()).unwrap_err();
        assert!(wrong.to_string().contains("wrong master key"), "{wrong}");
        // Moving a ciphertext to another tenant breaks its associated data.
        fs::write(&path, text.replace("\"acme\"", "\"evil\"")).unwrap();
        assert!(FileSecretStore::open(&path, &key).is_err());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Found by a hostile review (2026-11-30): the function list was joined with commas, so an
    /// entry for `["billing", "reports"]` edited to `["billing,reports"]` (or back) still opened.
    #[test]
    fn regression_function_names_with_commas_are_refused() {
        let dir = std::env::temp_dir().join(format!("palisade-secrets-{}", new_execution_id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.json");
        let key = MasterKey::generate().unwrap();
        let store = FileSecretStore::open(&path, &key).unwrap();
        let comma = Some(["billing,reports".to_owned()].into_iter().collect());
        let e = store.put("acme", "K", "value-1", comma).unwrap_err();
        assert!(e.to_string().contains("comma"), "{e}");
        let two = Some(
            ["billing".to_owned(), "reports".to_owned()]
                .into_iter()
                .collect(),
        );
        store.put("acme", "K", "value-1", two).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let edited = text.replace("\"billing\",\n        \"reports\"", "\"billing,reports\"");
        assert_ne!(edited, text, "the edit applies: {text}");
        fs::write(&path, edited).unwrap();
        let e = FileSecretStore::open(&path, &key).unwrap_err();
        assert!(e.to_string().contains("comma"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
