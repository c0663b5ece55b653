# Installation (`cmake --install`) and the Debian packages (`cpack -G DEB`):
#   p2pvpn             p2pvpnd, p2pvpnctl, p2pvpnd@.service, mesh.yaml.example, their man pages
#   p2pvpn-coordinator p2pvpn-coordinator, its service, coordinator.yaml.example, man pages,
#                      and the system user p2pvpn-coordinator (postinst)
# Configure with -DCMAKE_INSTALL_PREFIX=/usr for packages: then the configuration folder is
# /etc/p2pvpn (GNUInstallDirs' rule for /usr) and the units name /usr/bin/... Man pages come
# from contrib/man/*.md (contrib/man/md2man.awk), the one source of what they say.
include(GNUInstallDirs)

set(P2P_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/p2pvpn)
# Relative: under the install prefix of each configure (a cached absolute path would keep the
# first configure's prefix when a build directory is reconfigured for packaging).
set(P2P_UNITDIR lib/systemd/system CACHE STRING "systemd system units (relative: under the prefix)")

install(TARGETS p2pvpnd p2pvpnctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT daemon)
install(TARGETS p2pvpn-coordinator RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT coordinator)

# Units: ExecStart names the installed binary and configuration folder.
set(BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(CONFDIR ${P2P_CONFDIR})
foreach(unit p2pvpnd@.service p2pvpn-coordinator.service)
  configure_file(${PROJECT_SOURCE_DIR}/contrib/systemd/${unit}.in
                 ${PROJECT_BINARY_DIR}/systemd/${unit} @ONLY)
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/systemd/p2pvpnd@.service DESTINATION ${P2P_UNITDIR}
        COMPONENT daemon)
install(FILES ${PROJECT_BINARY_DIR}/systemd/p2pvpn-coordinator.service DESTINATION ${P2P_UNITDIR}
        COMPONENT coordinator)
install(FILES ${PROJECT_SOURCE_DIR}/contrib/examples/mesh.yaml.example DESTINATION ${P2P_CONFDIR}
        COMPONENT daemon)
install(FILES ${PROJECT_SOURCE_DIR}/contrib/examples/coordinator.yaml.example
        DESTINATION ${P2P_CONFDIR} COMPONENT coordinator)

# Man pages: NAME.SECTION.md -> NAME.SECTION.gz at build time (awk and gzip only).
set(P2P_MAN_PAGES p2pvpnd.8:daemon p2pvpnctl.1:daemon mesh.yaml.5:daemon
                  p2pvpn-coordinator.8:coordinator coordinator.yaml.5:coordinator)
set(P2P_MAN_OUTPUTS)
foreach(entry ${P2P_MAN_PAGES})
  string(REPLACE ":" ";" parts ${entry})
  list(GET parts 0 page)
  list(GET parts 1 component)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  set(src ${PROJECT_SOURCE_DIR}/contrib/man/${page}.md)
  set(out ${PROJECT_BINARY_DIR}/man/${page})
  add_custom_command(
    OUTPUT ${out}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND awk -v version=${PROJECT_VERSION} -f ${PROJECT_SOURCE_DIR}/contrib/man/md2man.awk
            ${src} > ${out}
    COMMAND gzip -9nf ${out}
    DEPENDS ${src} ${PROJECT_SOURCE_DIR}/contrib/man/md2man.awk
    COMMENT "man page ${page}")
  list(APPEND P2P_MAN_OUTPUTS ${out}.gz)
  install(FILES ${out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT ${component})
endforeach()
add_custom_target(man ALL DEPENDS ${P2P_MAN_OUTPUTS})

# Debian packages -----------------------------------------------------------------------------
set(CPACK_PACKAGE_NAME p2pvpn)
set(CPACK_PACKAGE_VENDOR "p2pvpn")
set(CPACK_PACKAGE_CONTACT "p2pvpn maintainers <p2pvpn@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "peer-to-peer mesh VPN")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL daemon coordinator)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)  # the debug info stays in the build tree
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: computed by dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/p2pvpn")

set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME p2pvpn)
set(CPACK_DEBIAN_DAEMON_DESCRIPTION
    "peer-to-peer mesh VPN: node daemon and control tool\n p2pvpnd joins a machine to a p2pvpn network (TUN interface, NAT traversal,\n end-to-end encryption); p2pvpnctl manages the CA, certificates and keys and\n queries the daemon. Run one instance per network with p2pvpnd@NAME.service.")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME p2pvpn-coordinator)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_COORDINATOR_DESCRIPTION
    "peer-to-peer mesh VPN: coordinator\n p2pvpn-coordinator registers the nodes of a p2pvpn network, introduces them\n to each other for hole punching, relays their encrypted traffic and answers\n STUN; it runs as the system user p2pvpn-coordinator without capabilities.")

# Maintainer scripts and conffiles (the examples in /etc/p2pvpn).
foreach(pkg p2pvpn p2pvpn-coordinator)
  set(dir ${PROJECT_BINARY_DIR}/deb/${pkg})
  file(MAKE_DIRECTORY ${dir})
  foreach(script postinst prerm postrm)
    file(COPY ${PROJECT_SOURCE_DIR}/contrib/deb/${pkg}/${script} DESTINATION ${dir}
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
  endforeach()
endforeach()
file(WRITE ${PROJECT_BINARY_DIR}/deb/p2pvpn/conffiles "${P2P_CONFDIR}/mesh.yaml.example\n")
file(WRITE ${PROJECT_BINARY_DIR}/deb/p2pvpn-coordinator/conffiles
     "${P2P_CONFDIR}/coordinator.yaml.example\n")
foreach(comp DAEMON COORDINATOR)
  if(comp STREQUAL DAEMON)
    set(dir ${PROJECT_BINARY_DIR}/deb/p2pvpn)
  else()
    set(dir ${PROJECT_BINARY_DIR}/deb/p2pvpn-coordinator)
  endif()
  set(CPACK_DEBIAN_${comp}_PACKAGE_CONTROL_EXTRA ${dir}/conffiles ${dir}/postinst ${dir}/prerm
                                                  ${dir}/postrm)
  set(CPACK_DEBIAN_${comp}_PACKAGE_CONTROL_STRICT_PERMISSION ON)
endforeach()
include(CPack)
