# install(EXPORT) package config, version file and pkg-config file.
include(CMakePackageConfigHelpers)

install(TARGETS ccb ccb_static EXPORT ccbTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/ccb DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ccbTargets NAMESPACE ccb:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ccb)

configure_package_config_file(cmake/ccbConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ccbConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ccb)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ccbConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ccbConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ccbConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ccb)

# A relocatable .pc: the prefix is found relative to the file itself.
file(RELATIVE_PATH CCB_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
configure_file(cmake/libccb.pc.in ${CMAKE_CURRENT_BINARY_DIR}/libccb.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/libccb.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
