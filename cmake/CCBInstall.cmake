# install(EXPORT) package config, version file and pkg-config file.
include(CMakePackageConfigHelpers)

# Two export sets: ccb::ccb (the shared library, needing only Threads) is
# always loaded by find_package(ccb); ccb::ccb_static needs OpenSSL and jansson
# at link time, so it is loaded only with find_package(ccb COMPONENTS static).
install(TARGETS ccb EXPORT ccbTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ccb_static EXPORT ccbStaticTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/ccb DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/ccb/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ccb)
install(EXPORT ccbTargets NAMESPACE ccb:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ccb)
install(EXPORT ccbStaticTargets NAMESPACE ccb:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ccb)

configure_package_config_file(cmake/ccbConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ccbConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ccb)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ccbConfigVersion.cmake
  COMPATIBILITY SameMajorVersion) # semantic versioning from 1.0 (docs/api.md)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ccbConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ccbConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ccb)

# A relocatable .pc: the prefix is found relative to the file itself.
file(RELATIVE_PATH CCB_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
configure_file(cmake/libccb.pc.in ${CMAKE_CURRENT_BINARY_DIR}/libccb.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/libccb.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The broker's systemd unit, an example broker config and the docs.
# CCB_SYSTEMD_UNITDIR is relative to the prefix unless absolute: the default
# lib/systemd/system is searched by systemd under /usr and /usr/local (on a
# merged-/usr Debian /usr/lib/systemd/system is /lib/systemd/system).
set(CCB_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the ccb-broker.service unit is installed (relative to the prefix, or absolute)")
option(CCB_INSTALL_SYSTEMD_UNIT "Install the ccb-broker systemd unit" ON)
if(IS_ABSOLUTE "${CCB_SYSTEMD_UNITDIR}")
  set(CCB_SYSTEMD_UNITDIR_FULL "${CCB_SYSTEMD_UNITDIR}")
else()
  set(CCB_SYSTEMD_UNITDIR_FULL "${CMAKE_INSTALL_PREFIX}/${CCB_SYSTEMD_UNITDIR}")
endif()
set(CCB_EXAMPLE_DIR "${CMAKE_INSTALL_DOCDIR}/examples")
set(CCB_EXAMPLE_DIR_FULL "${CMAKE_INSTALL_FULL_DOCDIR}/examples")
configure_file(packaging/ccb-broker.service.in ${CMAKE_CURRENT_BINARY_DIR}/ccb-broker.service @ONLY)
if(CCB_INSTALL_SYSTEMD_UNIT)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ccb-broker.service DESTINATION ${CCB_SYSTEMD_UNITDIR})
endif()
install(FILES packaging/broker.json examples/dial_example.c examples/listener_example.c
              examples/CMakeLists.txt
        DESTINATION ${CCB_EXAMPLE_DIR})
install(FILES docs/api.md docs/threading.md docs/config.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
