#include "cli.h"

struct conf *cli_load_conf(const char *path, char *errstr, size_t errstr_size)
{
	if (conf_env_file(".env", errstr, errstr_size) != 0)
		return NULL;
	return conf_load(path ? path : CLI_DEFAULT_CONF, errstr, errstr_size);
}
