//! The protobuf codec of every Missive service: tonic's prost codec with a smaller first
//! encoding buffer. Tonic allocates that buffer per call, eagerly, and keeps it for the
//! whole call: 8 KiB by default, which was most of what an idle `Subscribe` stream cost.
//! Replies and events are mostly far smaller; a larger one makes prost reserve what it
//! needs, once.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

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
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(ENCODE_BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::default())
    }
}
