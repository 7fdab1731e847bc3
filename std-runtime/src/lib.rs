//! courier: the Linux runtime of courier (io_uring with an epoll fallback).
