//! Items and keys: how a partition, an item and an entry are written as
//! DynamoDB attributes, and read back.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{DynamoDbBackend, Item, COUNTER_SK, ITEM_PREFIX, SWEEP_SHARDS};
use crate::backend::{Entry, KvError, PartitionName};

impl DynamoDbBackend {
    pub(super) fn item_key(&self, partition: &str, item: &str) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(partition_key(partition))),
            (
                "sk".to_owned(),
                AttributeValue::S(format!("{ITEM_PREFIX}{item}")),
            ),
        ])
    }

    pub(super) fn counter_key(&self, partition: &str) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(partition_key(partition))),
            ("sk".to_owned(), AttributeValue::S(COUNTER_SK.to_owned())),
        ])
    }

    pub(super) fn check_size(&self, head: &[u8], body: &[u8]) -> Result<(), KvError> {
        let size = head.len() + body.len();
        if size > self.max_value_bytes {
            return Err(KvError::TooLarge(format!(
                "{} bytes exceeds the DynamoDB item cap of {} bytes",
                size, self.max_value_bytes
            )));
        }
        Ok(())
    }

    pub(super) fn full_item(
        &self,
        partition: &str,
        item: &str,
        head: Vec<u8>,
        body: Vec<u8>,
        version: u64,
        expires_at: Option<u64>,
    ) -> Item {
        let mut attributes = self.item_key(partition, item);
        attributes.insert("h".into(), AttributeValue::B(Blob::new(head)));
        attributes.insert("v".into(), AttributeValue::B(Blob::new(body)));
        attributes.insert("ver".into(), AttributeValue::N(version.to_string()));
        if let Some(at) = expires_at {
            attributes.insert("sweep".into(), AttributeValue::S(sweep_shard(partition)));
            attributes.insert("exp_ms".into(), AttributeValue::N(at.to_string()));
            attributes.insert(
                "exp".into(),
                AttributeValue::N(at.div_ceil(1_000).to_string()),
            );
        }
        attributes
    }
}

/// The `pk` of a partition: the partition itself when it is plain (the
/// component's SHA-256 hex), else `x:` and its hex. The two forms cannot
/// meet (only the second has a `:`), and the empty partition, which
/// DynamoDB refuses as a key, gets a non-empty one.
pub(super) fn partition_key(partition: &str) -> String {
    match PartitionName::of(partition) {
        PartitionName::Plain(plain) => plain.to_owned(),
        PartitionName::Hex(hex) => format!("x:{hex}"),
    }
}

/// The sweep-index hash key of a partition's items (any spread will do:
/// a sweep queries every shard).
pub(super) fn sweep_shard(partition: &str) -> String {
    let sum = partition
        .bytes()
        .fold(0u32, |acc, b| acc.wrapping_add(u32::from(b)));
    format!("s#{}", sum % SWEEP_SHARDS)
}

/// The partition a `pk` stands for (the inverse of [`partition_key`]).
pub(super) fn partition_of(pk: &str) -> Option<String> {
    match pk.strip_prefix("x:") {
        Some(hex) => PartitionName::unhex(hex),
        None => Some(pk.to_owned()),
    }
}

/// The item id of a stored item (`None` for the counter).
pub(super) fn item_id(found: &Item) -> Option<&str> {
    found
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_prefix(ITEM_PREFIX))
}

pub(super) fn number(item: &Item, name: &str) -> Result<Option<u64>, KvError> {
    match item.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| KvError::Corrupt(format!("dynamodb returned a malformed {name}"))),
    }
}

pub(super) fn expiry_of(item: &Item) -> Result<Option<u64>, KvError> {
    number(item, "exp_ms")
}

/// The head and version every stored item carries, borrowed from it.
pub(super) fn head_and_version(item: &Item) -> Result<(&[u8], u64), KvError> {
    let head = item.get("h").and_then(|v| v.as_b().ok());
    match (head, number(item, "ver")?) {
        (Some(head), Some(version)) => Ok((head.as_ref(), version)),
        _ => Err(KvError::Corrupt(
            "dynamodb returned an item without value or version".into(),
        )),
    }
}

/// The entry of a stored item; a listed item (projected without `v`) has
/// an empty body.
pub(super) fn entry_of(item: &Item) -> Result<Entry, KvError> {
    let (head, version) = head_and_version(item)?;
    let body = item.get("v").and_then(|v| v.as_b().ok());
    Ok(Entry {
        head: head.to_vec(),
        body: body.map(|b| b.as_ref().to_vec()).unwrap_or_default(),
        version,
        expires_at: expiry_of(item)?,
    })
}
