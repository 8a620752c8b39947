# cmake -DDIRS=a|b|... -DFORBIDDEN=<dir> -P check-includes.cmake
# Fails when one of DIRS (ccbctl's include directories, inherited ones
# included) is FORBIDDEN (the library's src/) or a directory inside it.
string(REPLACE "|" ";" dirs "${DIRS}")
foreach(d IN LISTS dirs)
  cmake_path(IS_PREFIX FORBIDDEN "${d}" NORMALIZE inside)
  if(inside)
    message(FATAL_ERROR "ccbctl must use only libccb's public headers, but its include "
                        "directories contain ${d} (inside ${FORBIDDEN})")
  endif()
endforeach()
