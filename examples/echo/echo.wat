;; echo: an olin ABI (CommonWA) guest that answers with its request body.
;;
;; It reads stdin (the request body) in 64 KiB chunks and copies each chunk to
;; stdout after a CGI header block. It also logs the request method, which
;; lands in the call's stderr tail, never in the response.
(module
  (import "env" "io_get_stdin" (func $io_get_stdin (result i32)))
  (import "env" "io_get_stdout" (func $io_get_stdout (result i32)))
  (import "env" "resource_read" (func $resource_read (param i32 i32 i32) (result i32)))
  (import "env" "resource_write" (func $resource_write (param i32 i32 i32) (result i32)))
  (import "env" "env_get" (func $env_get (param i32 i32 i32 i32) (result i32)))
  (import "env" "log_write" (func $log_write (param i32 i32 i32)))
  (import "env" "runtime_exit" (func $runtime_exit (param i32)))

  (memory (export "memory") 2)

  ;; 0..64: strings; 64..128: method buffer; 65536..131072: the read buffer.
  (data (i32.const 0) "Content-Type: application/octet-stream\n\n")     ;; 40 bytes
  (data (i32.const 40) "REQUEST_METHOD")                               ;; 14 bytes

  (func (export "_start")
    (local $stdin i32) (local $stdout i32) (local $n i32) (local $len i32)
    (local.set $stdin (call $io_get_stdin))
    (local.set $stdout (call $io_get_stdout))

    ;; Log the method: env_get(key, 14, buf=64, 64) returns its length.
    (local.set $len (call $env_get (i32.const 40) (i32.const 14) (i32.const 64) (i32.const 64)))
    (if (i32.and (i32.gt_s (local.get $len) (i32.const 0)) (i32.le_s (local.get $len) (i32.const 64)))
      (then (call $log_write (i32.const 6) (i32.const 64) (local.get $len))))

    ;; The header block.
    (if (i32.ne (call $resource_write (local.get $stdout) (i32.const 0) (i32.const 40)) (i32.const 40))
      (then (call $runtime_exit (i32.const 1))))

    ;; Copy stdin to stdout until EOF (-5).
    (block $done
      (loop $copy
        (local.set $n (call $resource_read (local.get $stdin) (i32.const 65536) (i32.const 65536)))
        (br_if $done (i32.lt_s (local.get $n) (i32.const 1)))
        (drop (call $resource_write (local.get $stdout) (i32.const 65536) (local.get $n)))
        (br $copy)))
    (call $runtime_exit (i32.const 0)))
)
