#include "cli.h"

#include <unistd.h>

#ifndef HB_SYSCONFDIR
#define HB_SYSCONFDIR "/etc/hl7bridge"
#endif
#ifndef HB_DATADIR
#define HB_DATADIR "/usr/share/hl7bridge"
#endif

static const char *tree_or_installed(const char *tree, const char *installed)
{
	return access(tree, F_OK) == 0 ? tree : installed;
}

const char *cli_default_conf(void)
{
	return tree_or_installed("conf/hl7bridge.conf", HB_SYSCONFDIR "/hl7bridge.conf");
}

const char *cli_default_mappings(void)
{
	return tree_or_installed("mappings", HB_SYSCONFDIR "/mappings");
}

const char *cli_default_schemas(void)
{
	return tree_or_installed("conf/schemas", HB_DATADIR "/schemas");
}

struct conf *cli_load_conf(const char *path, char *errstr, size_t errstr_size)
{
	if (conf_env_file(".env", errstr, errstr_size) != 0)
		return NULL;
	return conf_load(path ? path : CLI_DEFAULT_CONF, errstr, errstr_size);
}
