//! Decoding a received request into a store operation, with the argument
//! rules of the C xenstored 4.17 (measured):
//! - single-argument requests need exactly one NUL-terminated string;
//! - `WATCH`/`UNWATCH` need at least two strings, `INTRODUCE` three;
//! - domain ids and the `DIRECTORY_PART` offset are read like C `atoi`
//!   (`GET_DOMAIN_PATH abc` answers `/local/domain/0`);
//! - `TRANSACTION_END` takes `T` or `F`; anything malformed is `EINVAL`;
//! - an unknown message type is `ENOSYS`.

use crate::mem::Op;
use crate::mem::atoi_domid as atoi;
use crate::wire::MsgType;
use crate::{Errno, Perm};

/// The NUL-terminated strings of a payload; `None` if the last one is not
/// terminated. An empty payload has no strings.
fn strings(payload: &[u8]) -> Option<Vec<&[u8]>> {
    match payload {
        [] => Some(Vec::new()),
        [body @ .., 0] => Some(body.split(|&b| b == 0).collect()),
        _ => None,
    }
}

fn text(b: &[u8]) -> Result<String, Errno> {
    String::from_utf8(b.to_vec()).map_err(|_| Errno::EINVAL)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The operation a request of type `ty` with `payload` asks for.
pub fn decode(ty: u32, payload: &[u8]) -> Result<Op, Errno> {
    let ty = MsgType::try_from(ty).map_err(|_| Errno::ENOSYS)?;
    let args = || strings(payload).ok_or(Errno::EINVAL);
    let one = || -> Result<&[u8], Errno> {
        match args()?.as_slice() {
            [a] => Ok(a),
            _ => Err(Errno::EINVAL),
        }
    };
    let at_least = |n: usize| -> Result<Vec<&[u8]>, Errno> {
        let v = args()?;
        if v.len() < n {
            return Err(Errno::EINVAL);
        }
        Ok(v)
    };
    Ok(match ty {
        MsgType::Read => Op::Read(text(one()?)?),
        MsgType::Mkdir => Op::Mkdir(text(one()?)?),
        MsgType::Rm => Op::Rm(text(one()?)?),
        MsgType::Directory => Op::Directory(text(one()?)?),
        MsgType::GetPerms => Op::GetPerms(text(one()?)?),
        MsgType::Write => {
            let nul = payload.iter().position(|&b| b == 0).ok_or(Errno::EINVAL)?;
            Op::Write(text(&payload[..nul])?, payload[nul + 1..].to_vec())
        }
        MsgType::DirectoryPart => match args()?.as_slice() {
            [p, off] => Op::DirectoryPart(text(p)?, atoi(&lossy(off)) as usize),
            _ => return Err(Errno::EINVAL),
        },
        MsgType::SetPerms => {
            let v = at_least(2)?;
            let perms = v[1..]
                .iter()
                .map(|p| lossy(p).parse::<Perm>().map_err(|_| Errno::EINVAL))
                .collect::<Result<Vec<_>, _>>()?;
            Op::SetPerms(text(v[0])?, perms)
        }
        MsgType::Watch => {
            let v = at_least(2)?;
            Op::Watch(text(v[0])?, lossy(v[1]))
        }
        MsgType::Unwatch => {
            let v = at_least(2)?;
            Op::Unwatch(text(v[0])?, lossy(v[1]))
        }
        MsgType::TransactionStart => Op::TransactionStart,
        MsgType::TransactionEnd => match one()? {
            b"T" => Op::TransactionEnd(true),
            b"F" => Op::TransactionEnd(false),
            _ => return Err(Errno::EINVAL),
        },
        MsgType::GetDomainPath => Op::GetDomainPath(atoi(&lossy(one()?))),
        MsgType::IsDomainIntroduced => Op::IsDomainIntroduced(atoi(&lossy(one()?))),
        MsgType::Release => Op::Release(atoi(&lossy(one()?))),
        MsgType::Resume => Op::Resume(atoi(&lossy(one()?))),
        MsgType::Introduce => Op::Introduce(atoi(&lossy(at_least(3)?[0]))),
        MsgType::SetTarget => {
            let v = at_least(2)?;
            Op::SetTarget(atoi(&lossy(v[0])), atoi(&lossy(v[1])))
        }
        MsgType::ResetWatches => Op::ResetWatches,
        MsgType::Control => Op::Control,
        MsgType::WatchEvent | MsgType::Error => return Err(Errno::EINVAL),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quirks_of_the_daemon() {
        assert_eq!(decode(99, b""), Err(Errno::ENOSYS));
        assert_eq!(decode(2, b"/a"), Err(Errno::EINVAL));
        assert_eq!(decode(2, b"/a\0/b\0"), Err(Errno::EINVAL));
        assert_eq!(decode(10, b"abc\0"), Ok(Op::GetDomainPath(0)));
        assert_eq!(decode(11, b"/a"), Err(Errno::EINVAL));
        assert_eq!(
            decode(11, b"/a\0v\0x"),
            Ok(Op::Write("/a".into(), b"v\0x".to_vec()))
        );
        assert_eq!(decode(22, b"/a\0"), Err(Errno::EINVAL));
        assert_eq!(
            decode(22, b"/a\0x\0"),
            Ok(Op::DirectoryPart("/a".into(), 0))
        );
        assert_eq!(decode(14, b"/a\0"), Err(Errno::EINVAL));
        assert_eq!(decode(14, b"/a\0x5\0"), Err(Errno::EINVAL));
        assert_eq!(decode(7, b"X\0"), Err(Errno::EINVAL));
        assert_eq!(decode(4, b"/a\0"), Err(Errno::EINVAL));
        assert_eq!(decode(8, b"5\0"), Err(Errno::EINVAL));
        assert_eq!(decode(8, b"5\0 1\0 2\0"), Ok(Op::Introduce(5)));
    }
}
