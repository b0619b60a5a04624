/*
 * version — the build's version and git hash, passed by the Makefile as
 * -DCCMS_VERSION / -DCCMS_GIT_HASH ("unknown" when built otherwise). Shown
 * by -version and in GET /metrics (ccms_build_info).
 */
#ifndef CCMS_VERSION_H
#define CCMS_VERSION_H

#ifndef CCMS_VERSION
#define CCMS_VERSION "unknown"
#endif
#ifndef CCMS_GIT_HASH
#define CCMS_GIT_HASH "unknown"
#endif

#endif
