//! Table tests of the routers: exact desired objects for hand-written inputs.
