# Warnings, -Werror and sanitizers, applied to every target of the project through
# the interface target mlscale::build_flags (linked by mlscale_* helpers and modules).
add_library(mlscale_build_flags INTERFACE)
add_library(mlscale::build_flags ALIAS mlscale_build_flags)
target_compile_options(mlscale_build_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough>)
if(MLSCALE_WERROR)
  target_compile_options(mlscale_build_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()

if(MLSCALE_SANITIZE)
  list(JOIN MLSCALE_SANITIZE "," _mlscale_sanitizers)
  message(STATUS "mlscale: sanitizers enabled: ${_mlscale_sanitizers}")
  add_compile_options($<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=${_mlscale_sanitizers}>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-sanitize-recover=all>)
  add_link_options(-fsanitize=${_mlscale_sanitizers})
endif()

# Third-party headers are included as system headers so their warnings do not fail -Werror.
set(CMAKE_NO_SYSTEM_FROM_IMPORTED OFF)
