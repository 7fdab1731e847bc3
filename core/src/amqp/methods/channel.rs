//! Classes `channel` (20), `confirm` (85, RabbitMQ) and `tx` (90).

use crate::amqp::codec::{DecodeError, Reader, ShortStr, Writer};

/// A method of class `channel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel<'a> {
    /// 20.10 client → server.
    Open,
    /// 20.11 server → client.
    OpenOk,
    /// 20.20 either way: pause (false) or resume (true) content.
    Flow {
        /// Resume (true) or pause (false).
        active: bool,
    },
    /// 20.21 either way.
    FlowOk {
        /// The state now.
        active: bool,
    },
    /// 20.40 either way.
    Close {
        /// Reply code.
        reply_code: u16,
        /// Reply text.
        reply_text: ShortStr<'a>,
        /// Class of the method that failed.
        class_id: u16,
        /// Method that failed.
        method_id: u16,
    },
    /// 20.41 either way.
    CloseOk,
}

impl<'a> Channel<'a> {
    /// Method id within the class.
    pub fn method_id(&self) -> u16 {
        match self {
            Channel::Open => 10,
            Channel::OpenOk => 11,
            Channel::Flow { .. } => 20,
            Channel::FlowOk { .. } => 21,
            Channel::Close { .. } => 40,
            Channel::CloseOk => 41,
        }
    }
    /// Reads the arguments of method `method`.
    pub fn read(method: u16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(match method {
            10 => {
                r.short_str()?;
                Channel::Open
            }
            11 => {
                r.long_str()?;
                Channel::OpenOk
            }
            20 => Channel::Flow { active: r.bit()? },
            21 => Channel::FlowOk { active: r.bit()? },
            40 => Channel::Close {
                reply_code: r.u16()?,
                reply_text: r.short_str()?,
                class_id: r.u16()?,
                method_id: r.u16()?,
            },
            41 => Channel::CloseOk,
            method => return Err(DecodeError::UnknownMethod { class: 20, method }),
        })
    }
    /// Writes the arguments.
    pub fn write(&self, w: &mut Writer<'_>) {
        match *self {
            Channel::Open => w.short_str(ShortStr::new("")),
            Channel::OpenOk => w.long_str(b""),
            Channel::Flow { active } | Channel::FlowOk { active } => w.bits(&[active]),
            Channel::Close {
                reply_code,
                reply_text,
                class_id,
                method_id,
            } => {
                w.u16(reply_code);
                w.short_str(reply_text);
                w.u16(class_id);
                w.u16(method_id);
            }
            Channel::CloseOk => {}
        }
    }
}

/// A method of class `confirm` (publisher confirms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// 85.10 client → server.
    Select {
        /// No reply wanted.
        nowait: bool,
    },
    /// 85.11 server → client.
    SelectOk,
}

impl Confirm {
    /// Method id within the class.
    pub fn method_id(&self) -> u16 {
        match self {
            Confirm::Select { .. } => 10,
            Confirm::SelectOk => 11,
        }
    }
    /// Reads the arguments of method `method`.
    pub fn read(method: u16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match method {
            10 => Confirm::Select { nowait: r.bit()? },
            11 => Confirm::SelectOk,
            method => return Err(DecodeError::UnknownMethod { class: 85, method }),
        })
    }
    /// Writes the arguments.
    pub fn write(&self, w: &mut Writer<'_>) {
        if let Confirm::Select { nowait } = *self {
            w.bits(&[nowait]);
        }
    }
}

/// A method of class `tx` (no arguments anywhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tx {
    /// 90.10
    Select,
    /// 90.11
    SelectOk,
    /// 90.20
    Commit,
    /// 90.21
    CommitOk,
    /// 90.30
    Rollback,
    /// 90.31
    RollbackOk,
}

impl Tx {
    /// Method id within the class.
    pub fn method_id(&self) -> u16 {
        match self {
            Tx::Select => 10,
            Tx::SelectOk => 11,
            Tx::Commit => 20,
            Tx::CommitOk => 21,
            Tx::Rollback => 30,
            Tx::RollbackOk => 31,
        }
    }
    /// The method with id `method`.
    pub fn read(method: u16) -> Result<Self, DecodeError> {
        Ok(match method {
            10 => Tx::Select,
            11 => Tx::SelectOk,
            20 => Tx::Commit,
            21 => Tx::CommitOk,
            30 => Tx::Rollback,
            31 => Tx::RollbackOk,
            method => return Err(DecodeError::UnknownMethod { class: 90, method }),
        })
    }
}
