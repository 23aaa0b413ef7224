;; Sleeps 50 ms (runtime_msleep), then answers with its query string, so a
;; caller can tell its own answer from any other.
(module
  (import "env" "env_get" (func $env_get (param i32 i32 i32 i32) (result i32)))
  (import "env" "io_get_stdout" (func $stdout (result i32)))
  (import "env" "resource_write" (func $write (param i32 i32 i32) (result i32)))
  (import "env" "runtime_msleep" (func $sleep (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "QUERY_STRING")
  (data (i32.const 16) "Content-Type: text/plain\n\n")
  (func (export "_start")
    (local $n i32)
    (call $sleep (i32.const 50))
    (local.set $n (call $env_get (i32.const 0) (i32.const 12) (i32.const 1024) (i32.const 1024)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (local.set $n (i32.const 0))))
    (drop (call $write (call $stdout) (i32.const 16) (i32.const 26)))
    (drop (call $write (call $stdout) (i32.const 1024) (local.get $n)))))
