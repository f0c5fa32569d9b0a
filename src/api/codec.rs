//! The protobuf codec of every Missive service: tonic's prost codec with a smaller first
//! encoding buffer, and a decoder that calls a malformed request the client's fault.
//!
//! Tonic allocates the encoding buffer per call, eagerly, and keeps it for the whole call:
//! 8 KiB by default, which was most of what an idle `Subscribe` stream cost. Replies and
//! events are mostly far smaller; a larger one makes prost reserve what it needs, once.
//!
//! A request body that does not decode (not protobuf, invalid UTF-8 in a string, a
//! `Struct` nested past prost's recursion limit) is INVALID_ARGUMENT with prost's words,
//! which name the message and field. Tonic answers INTERNAL, as gRPC's status table does
//! for parse errors in general; but INTERNAL tells a client the server failed and a retry
//! might help, where here the request is wrong and a retry never will.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use super::status;

/// The first size of a call's encoding buffer.
const ENCODE_BUFFER: usize = 1024;

/// How much a stream encodes before it yields to other tasks (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Encodes `T` and decodes `U` as prost does, with a 1 KiB first encoding buffer.
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(ProstCodec::<T, U>::raw_decoder(BufferSettings::default()))
    }
}

/// Prost's decoder, with a body that does not decode answered INVALID_ARGUMENT. (The
/// generated clients share the codec; a server never sends a malformed reply.)
#[derive(Debug)]
pub struct RequestDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            let code = Code::InvalidArgument;
            status::with_reason(code, format!("the request body {}", status.message()), status::transport_reason(code))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
