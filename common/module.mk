# common/: logging and die(), linked into every program through libdrvdom.
LIBS_A += drvdom
drvdom_SRCS += common/log.c
