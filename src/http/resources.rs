//! The original PEZ's four resources: the path, the sequence each issues
//! from, and how it answers. Their description (OPTIONS, /openapi.json)
//! is in [`super::openapi`].

/// The methods every number resource answers.
pub const ALLOW: &str = "GET, OPTIONS";

/// How a resource answers: v1 a bare integer, v2 always a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One number as a bare JSON integer.
    Single,
    /// `count` numbers as a JSON array.
    List,
}

/// One of the original API's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// Its path.
    pub path: &'static str,
    /// The sequence it issues from.
    pub sequence: &'static str,
    /// How it answers.
    pub shape: Shape,
}

/// GET /v1/forward
pub const V1_FORWARD: Resource = Resource {
    path: "/v1/forward",
    sequence: "forward",
    shape: Shape::Single,
};
/// GET /v1/reverse
pub const V1_REVERSE: Resource = Resource {
    path: "/v1/reverse",
    sequence: "reverse",
    shape: Shape::Single,
};
/// GET /v2/forward?count=N
pub const V2_FORWARD: Resource = Resource {
    path: "/v2/forward",
    sequence: "forward",
    shape: Shape::List,
};
/// GET /v2/reverse?count=N
pub const V2_REVERSE: Resource = Resource {
    path: "/v2/reverse",
    sequence: "reverse",
    shape: Shape::List,
};
