//! A save that shows the record's fields one by one, and which of them changed, for a backend
//! that can store fields apart and write only the changed ones.

use std::ops::Range;

use crate::backend::Record;

/// Records shorter than this are not worth storing field by field (see
/// [`FieldSave::worth_storing_apart`]), and the store keeps no copy of them to patch: encoding
/// and writing a small session whole costs less than keeping a second copy of it in memory or
/// writing it a field at a time.
pub(crate) const STORE_APART_FROM: usize = 512;

/// A save as [`SessionBackend::save_fields`](crate::backend::SessionBackend::save_fields) gets
/// it: the whole [`Record`], and the same record cut into its parts, the envelope's head and
/// one JSON member (`"name":value`) per stored field, each marked changed or not since the
/// record this save replaces.
///
/// Joined back, the parts are the record: [`head`](Self::head), then `"fields":{`, the
/// members separated by commas, and `}}`. A record sealed whole (`with_encrypt_all`) has no
/// members to show: it is written whole.
#[derive(Debug, Clone, Copy)]
pub struct FieldSave<'a> {
    record: &'a Record,
    head: &'a str,
    names: &'a [&'static str],
    members: &'a [Range<usize>],
    /// One bit per member (by position): copied unchanged from the record being replaced.
    unchanged: u64,
}

/// One stored field of a [`FieldSave`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// The field's stored name.
    pub name: &'a str,
    /// The field as a JSON object member: `"name":value`.
    pub json: &'a str,
    /// Whether it differs from the record this save replaces (always, for a new record or a
    /// save whose base is not that record).
    pub changed: bool,
}

impl<'a> FieldSave<'a> {
    /// The parts of `record`: `head_end` bytes of head, and each member's name and byte range
    /// in `record.data`. `None` when they do not cut `record.data` as [`FieldSave`] describes.
    pub(crate) fn new(
        record: &'a Record,
        head_end: usize,
        names: &'a [&'static str],
        members: &'a [Range<usize>],
        unchanged: u64,
    ) -> Option<Self> {
        let data = record.data.as_str();
        let head = data.get(..head_end)?;
        let fits = names.len() == members.len()
            && members.len() <= 64
            && members.iter().all(|span| data.get(span.clone()).is_some());
        let unchanged = if members.is_empty() { 0 } else { unchanged };
        fits.then_some(Self {
            record,
            head,
            names,
            members,
            unchanged,
        })
    }

    /// The record written whole, with nothing cut out: for a save that shows no fields.
    pub(crate) fn whole(record: &'a Record) -> Self {
        Self {
            record,
            head: "",
            names: &[],
            members: &[],
            unchanged: 0,
        }
    }

    /// The whole record.
    #[must_use]
    pub fn record(&self) -> &'a Record {
        self.record
    }

    /// The envelope before its fields (`{"format":1,…,`), or `""` when the record shows no
    /// fields.
    #[must_use]
    pub fn head(&self) -> &'a str {
        self.head
    }

    /// Each stored field, in order; none for a record sealed whole.
    pub fn members(&self) -> impl ExactSizeIterator<Item = Member<'a>> + 'a {
        let (data, unchanged) = (self.record.data.as_str(), self.unchanged);
        self.names
            .iter()
            .zip(self.members)
            .enumerate()
            .map(move |(position, (name, span))| Member {
                name,
                json: &data[span.clone()],
                changed: unchanged & (1 << position) == 0,
            })
    }

    /// Whether the record is worth storing field by field: it has fields to show, and is long
    /// enough (512 bytes or more) for later saves to write only their changed fields. The
    /// store patches only records this long, so a shorter one's every save would write every
    /// field; storing it whole is cheaper.
    #[must_use]
    pub fn worth_storing_apart(&self) -> bool {
        !self.members.is_empty() && self.record.data.len() >= STORE_APART_FROM
    }

    /// Whether some fields are unchanged: a backend that stores fields apart may write only
    /// the changed ones (under the same compare-and-set on the version).
    #[must_use]
    pub fn is_partial(&self) -> bool {
        self.unchanged != 0
    }
}
