//! The ConfigServer v2 agent protocol (`configserver.proto.v2`), as Rust
//! structs with `prost` derives: field names, numbers and types follow the
//! protocol exactly, so bodies interoperate with LoongCollector's
//! ConfigServer and agents.
//!
//! ```
//! use logtail_sdk::fleet::proto::{HeartbeatRequest, Message};
//! let req = HeartbeatRequest { sequence_num: 7, agent_type: "logtail-rs".into(), ..Default::default() };
//! let bytes = req.encode_to_vec();
//! assert_eq!(HeartbeatRequest::decode(bytes.as_slice()).unwrap(), req);
//! ```

use std::collections::BTreeMap;

pub use prost::Message;

/// Agent capability: continuous pipeline configs.
pub const AGENT_CAP_CONTINUOUS_PIPELINE_CONFIG: u64 = 1;
/// Agent capability: instance configs.
pub const AGENT_CAP_INSTANCE_CONFIG: u64 = 2;
/// Agent capability: one-time pipeline configs.
pub const AGENT_CAP_ONETIME_PIPELINE_CONFIG: u64 = 4;
/// Request flag: this heartbeat carries the agent's full state.
pub const REQUEST_FLAG_FULL_STATE: u64 = 1;
/// Server capability: remembers attributes.
pub const SERVER_CAP_REMEMBER_ATTRIBUTE: u64 = 1;
/// Server capability: remembers continuous pipeline config status.
pub const SERVER_CAP_REMEMBER_CONTINUOUS_PIPELINE_CONFIG_STATUS: u64 = 2;
/// Server capability: remembers instance config status.
pub const SERVER_CAP_REMEMBER_INSTANCE_CONFIG_STATUS: u64 = 4;
/// Server capability: remembers one-time pipeline config status.
pub const SERVER_CAP_REMEMBER_ONETIME_PIPELINE_CONFIG_STATUS: u64 = 8;
/// Response flag: the next heartbeat must carry the full state.
pub const RESPONSE_FLAG_REPORT_FULL_STATE: u64 = 1;
/// Response flag: updates carry names and versions only; fetch the details
/// with `FetchPipelineConfig`.
pub const RESPONSE_FLAG_FETCH_CONTINUOUS_PIPELINE_CONFIG_DETAIL: u64 = 2;
/// Response flag: fetch instance config details.
pub const RESPONSE_FLAG_FETCH_INSTANCE_CONFIG_DETAIL: u64 = 4;

/// A tag the agent reports; servers match machine groups on them
/// (`user_defined_id` tags carry the host's user-defined identities).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AgentGroupTag {
    /// Tag name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Tag value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// State of one config on an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ConfigStatus {
    /// Not set.
    Unset = 0,
    /// Being applied.
    Applying = 1,
    /// Running.
    Applied = 2,
    /// Could not be applied (the message says why).
    Failed = 3,
}

/// A config the agent holds, with its state.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ConfigInfo {
    /// Config name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Version (-1: deleted; 0 reserved).
    #[prost(int64, tag = "2")]
    pub version: i64,
    /// [`ConfigStatus`] as i32.
    #[prost(enumeration = "ConfigStatus", tag = "3")]
    pub status: i32,
    /// Why it failed, for FAILED.
    #[prost(string, tag = "4")]
    pub message: String,
    /// Extension fields.
    #[prost(btree_map = "string, bytes", tag = "5")]
    pub extra: BTreeMap<String, Vec<u8>>,
}

/// What the agent says about the host it runs on.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AgentAttributes {
    /// Agent version.
    #[prost(bytes = "vec", tag = "1")]
    pub version: Vec<u8>,
    /// Host IP (text).
    #[prost(bytes = "vec", tag = "2")]
    pub ip: Vec<u8>,
    /// Host name.
    #[prost(bytes = "vec", tag = "3")]
    pub hostname: Vec<u8>,
    /// Host id.
    #[prost(bytes = "vec", tag = "4")]
    pub hostid: Vec<u8>,
    /// Anything else, e.g. `os`.
    #[prost(btree_map = "string, bytes", tag = "100")]
    pub extras: BTreeMap<String, Vec<u8>>,
}

/// `POST /Agent/Heartbeat` body.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HeartbeatRequest {
    /// Unique per request.
    #[prost(bytes = "vec", tag = "1")]
    pub request_id: Vec<u8>,
    /// Grows by one each request.
    #[prost(uint64, tag = "2")]
    pub sequence_num: u64,
    /// Agent capability bits (`AGENT_CAP_*`).
    #[prost(uint64, tag = "3")]
    pub capabilities: u64,
    /// Stable for the life of the agent process.
    #[prost(bytes = "vec", tag = "4")]
    pub instance_id: Vec<u8>,
    /// Names the agent, e.g. `logtail-rs`.
    #[prost(string, tag = "5")]
    pub agent_type: String,
    /// Host attributes.
    #[prost(message, optional, tag = "6")]
    pub attributes: Option<AgentAttributes>,
    /// Tags (user-defined identities and configured tags).
    #[prost(message, repeated, tag = "7")]
    pub tags: Vec<AgentGroupTag>,
    /// Free-form running status.
    #[prost(string, tag = "8")]
    pub running_status: String,
    /// Agent start time (Unix seconds).
    #[prost(int64, tag = "9")]
    pub startup_time: i64,
    /// Continuous pipeline configs the agent holds.
    #[prost(message, repeated, tag = "10")]
    pub continuous_pipeline_configs: Vec<ConfigInfo>,
    /// Instance configs the agent holds.
    #[prost(message, repeated, tag = "11")]
    pub instance_configs: Vec<ConfigInfo>,
    /// One-time pipeline configs the agent holds.
    #[prost(message, repeated, tag = "12")]
    pub onetime_pipeline_configs: Vec<ConfigInfo>,
    /// Request flag bits (`REQUEST_FLAG_*`).
    #[prost(uint64, tag = "13")]
    pub flags: u64,
    /// Opaque server data.
    #[prost(bytes = "vec", tag = "14")]
    pub opaque: Vec<u8>,
}

/// A config the agent must change to.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ConfigDetail {
    /// Config name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// New version (-1: deleted).
    #[prost(int64, tag = "2")]
    pub version: i64,
    /// The config text (YAML or JSON); empty when it must be fetched.
    #[prost(bytes = "vec", tag = "3")]
    pub detail: Vec<u8>,
    /// Extension fields.
    #[prost(btree_map = "string, bytes", tag = "4")]
    pub extra: BTreeMap<String, Vec<u8>>,
}

/// A one-time command.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CommandDetail {
    /// Command name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Command body.
    #[prost(bytes = "vec", tag = "2")]
    pub detail: Vec<u8>,
    /// Expiry (Unix seconds).
    #[prost(int64, tag = "3")]
    pub expire_time: i64,
    /// Extension fields.
    #[prost(btree_map = "string, bytes", tag = "4")]
    pub extra: BTreeMap<String, Vec<u8>>,
}

/// Status of a server answer: 0 is success.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CommonResponse {
    /// 0: success; anything else: the agent ignores the answer.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// What went wrong.
    #[prost(bytes = "vec", tag = "2")]
    pub error_message: Vec<u8>,
}

/// `POST /Agent/Heartbeat` answer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HeartbeatResponse {
    /// Echo of the request id.
    #[prost(bytes = "vec", tag = "1")]
    pub request_id: Vec<u8>,
    /// Success or error.
    #[prost(message, optional, tag = "2")]
    pub common_response: Option<CommonResponse>,
    /// Server capability bits (`SERVER_CAP_*`).
    #[prost(uint64, tag = "3")]
    pub capabilities: u64,
    /// Continuous pipeline configs to change.
    #[prost(message, repeated, tag = "4")]
    pub continuous_pipeline_config_updates: Vec<ConfigDetail>,
    /// Instance configs to change.
    #[prost(message, repeated, tag = "5")]
    pub instance_config_updates: Vec<ConfigDetail>,
    /// One-time commands.
    #[prost(message, repeated, tag = "6")]
    pub onetime_pipeline_config_updates: Vec<CommandDetail>,
    /// Response flag bits (`RESPONSE_FLAG_*`).
    #[prost(uint64, tag = "7")]
    pub flags: u64,
    /// Opaque data to echo.
    #[prost(bytes = "vec", tag = "8")]
    pub opaque: Vec<u8>,
}

/// `POST /Agent/FetchPipelineConfig` body.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FetchConfigRequest {
    /// Unique per request.
    #[prost(bytes = "vec", tag = "1")]
    pub request_id: Vec<u8>,
    /// The agent's instance id.
    #[prost(bytes = "vec", tag = "2")]
    pub instance_id: Vec<u8>,
    /// The configs wanted (name and version).
    #[prost(message, repeated, tag = "3")]
    pub continuous_pipeline_configs: Vec<ConfigInfo>,
    /// Instance configs wanted.
    #[prost(message, repeated, tag = "4")]
    pub instance_configs: Vec<ConfigInfo>,
    /// One-time configs wanted.
    #[prost(message, repeated, tag = "5")]
    pub onetime_pipeline_configs: Vec<ConfigInfo>,
}

/// `POST /Agent/FetchPipelineConfig` answer.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct FetchConfigResponse {
    /// Echo of the request id.
    #[prost(bytes = "vec", tag = "1")]
    pub request_id: Vec<u8>,
    /// Success or error.
    #[prost(message, optional, tag = "2")]
    pub common_response: Option<CommonResponse>,
    /// The details.
    #[prost(message, repeated, tag = "3")]
    pub continuous_pipeline_config_updates: Vec<ConfigDetail>,
    /// Instance config details.
    #[prost(message, repeated, tag = "4")]
    pub instance_config_updates: Vec<ConfigDetail>,
    /// One-time commands.
    #[prost(message, repeated, tag = "5")]
    pub onetime_pipeline_config_updates: Vec<CommandDetail>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_numbers_match_the_protocol() {
        // Hand-encoded: field 2 (sequence_num, varint) = 5, field 5
        // (agent_type) = "x", field 13 (flags) = 1.
        let bytes = [0x10, 5, 0x2a, 1, b'x', 0x68, 1];
        let req = HeartbeatRequest::decode(&bytes[..]).unwrap();
        assert_eq!(req.sequence_num, 5);
        assert_eq!(req.agent_type, "x");
        assert_eq!(req.flags, 1);
        // extras = 100: key tag (100 << 3 | 2) = 0xa2 0x06.
        let attrs = AgentAttributes {
            extras: [("os".to_string(), b"linux".to_vec())].into(),
            ..Default::default()
        };
        assert_eq!(&attrs.encode_to_vec()[..2], &[0xa2, 0x06]);
        // HeartbeatResponse.flags = 7.
        let resp = HeartbeatResponse {
            flags: 2,
            ..Default::default()
        };
        assert_eq!(resp.encode_to_vec(), vec![0x38, 2]);
        // FetchConfigResponse.continuous_pipeline_config_updates = 3.
        let fetch = FetchConfigResponse {
            continuous_pipeline_config_updates: vec![ConfigDetail::default()],
            ..Default::default()
        };
        assert_eq!(fetch.encode_to_vec(), vec![0x1a, 0]);
        let info = ConfigInfo {
            status: ConfigStatus::Failed as i32,
            ..Default::default()
        };
        assert_eq!(info.encode_to_vec(), vec![0x18, 3]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[0xff_u8, 0xff, 0xff][..], &[0x0a, 0x10, 1], &[0x12]] {
            assert!(HeartbeatResponse::decode(bytes).is_err());
        }
    }
}
