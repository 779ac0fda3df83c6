//! Raw gRPC calls: request bytes exactly as a hostile caller would send
//! them, including bytes no generated client could produce.

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tonic::{
    Code, Request, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};

/// Passes message bytes through untouched, both ways.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// One unary call with `message` as the request's bytes and `metadata` as
/// request headers, their values as raw bytes (so also values that are not
/// UTF-8), appended in order (so also a header given twice).
pub async fn call(
    channel: &Channel,
    path: &'static str,
    message: Bytes,
    metadata: &[(&'static str, Vec<u8>)],
) -> Result<Bytes, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone())
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    grpc.ready()
        .await
        .map_err(|e| Status::new(Code::Unknown, e.to_string()))?;
    let mut request = Request::new(message);
    for (name, value) in metadata {
        let value =
            MetadataValue::<Ascii>::try_from(value.as_slice()).expect("a value HTTP/2 can carry");
        request.metadata_mut().append(*name, value);
    }
    grpc.unary(request, PathAndQuery::from_static(path), RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Protobuf wire encoding by hand.
#[derive(Default, Clone)]
pub struct Wire(Vec<u8>);

impl Wire {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn varint(mut self, mut v: u64) -> Self {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return self;
            }
            self.0.push(byte | 0x80);
        }
    }

    /// A length-delimited field.
    pub fn bytes(self, field: u64, data: &[u8]) -> Self {
        let mut w = self.varint(field << 3 | 2).varint(data.len() as u64);
        w.0.extend_from_slice(data);
        w
    }

    /// A varint field.
    pub fn int(self, field: u64, v: u64) -> Self {
        self.varint(field << 3).varint(v)
    }

    /// Bytes appended as they are.
    pub fn raw(mut self, data: &[u8]) -> Self {
        self.0.extend_from_slice(data);
        self
    }

    pub fn build(self) -> Bytes {
        self.0.into()
    }
}
