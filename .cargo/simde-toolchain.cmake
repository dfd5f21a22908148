# Passed to every CMake build through CMAKE_TOOLCHAIN_FILE (see config.toml).
# The quickjs engine backend (crate v8x) builds WAMR, whose CMake fetches simde
# from GitHub. Point FetchContent at Debian's libsimde-dev headers instead, so
# the build needs no network beyond the package registries.
set(FETCHCONTENT_SOURCE_DIR_SIMDE "${CMAKE_CURRENT_LIST_DIR}/simde")
set(FETCHCONTENT_FULLY_DISCONNECTED ON)
