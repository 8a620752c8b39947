# Build options: warnings, sanitizers, fuzzing.
option(CCB_WERROR "Treat warnings as errors" OFF)
option(CCB_BUILD_TESTS "Build the CUnit test suites" ON)
option(CCB_FUZZ "Build libFuzzer targets (needs clang)" OFF)
set(CCB_SANITIZE "" CACHE STRING "Sanitizers: 'address,undefined' or 'thread' (empty for none)")

add_compile_definitions(_GNU_SOURCE)
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
                    -Wno-unused-parameter -fno-strict-aliasing)
# Error details are truncated on purpose; only GCC warns about that.
add_compile_options($<$<C_COMPILER_ID:GNU>:-Wno-format-truncation>)
if(CCB_WERROR)
  add_compile_options(-Werror)
endif()

if(CCB_SANITIZE)
  if(CCB_SANITIZE MATCHES "thread" AND CCB_SANITIZE MATCHES "address")
    message(FATAL_ERROR "CCB_SANITIZE: thread cannot be combined with address")
  endif()
  add_compile_options(-fsanitize=${CCB_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${CCB_SANITIZE})
endif()

if(CCB_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "CCB_FUZZ=ON needs clang (configure with CC=clang-14)")
  endif()
  # Instrument the library for coverage so libFuzzer can steer into it.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
