//! The one error of the settings: which variable, what it holds (unless
//! secret) and what it must be.

use std::fmt;

/// A setting with a value PEZ cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    variable: &'static str,
    value: Option<String>,
    expected: String,
}

impl SettingError {
    /// `variable` has `value`, which is not `expected`.
    pub fn new(variable: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            variable,
            value: Some(value.to_owned()),
            expected: expected.into(),
        }
    }

    /// The same, for a secret: the value is not repeated.
    pub fn hidden(variable: &'static str, expected: impl Into<String>) -> Self {
        Self {
            variable,
            value: None,
            expected: expected.into(),
        }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "{} must be {}, not {value:?}",
                self.variable, self.expected
            ),
            None => write!(f, "{} must be {}", self.variable, self.expected),
        }
    }
}

impl std::error::Error for SettingError {}
