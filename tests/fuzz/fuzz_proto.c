/* libFuzzer target for the wire format parser: any bytes must parse or be
 * refused cleanly; whatever parses must format and parse back the same. */
#include <stdint.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct nf_msg m, back;
	char line[NF_PROTO_LINE_MAX + 1];
	int n;

	if (nf_msg_parse((const char *)buf, len, &m) < 0)
		return 0;
	n = nf_msg_format(&m, line, sizeof(line));
	if (n < 0)
		return 0; /* escaping can make a valid line too long to send back */
	if (nf_msg_parse(line, (size_t)n - 1, &back) != 0 || strcmp(back.verb, m.verb) != 0 ||
	    back.nfields != m.nfields)
		__builtin_trap();
	for (unsigned i = 0; i < m.nfields; i++) {
		if (strcmp(back.fields[i].key, m.fields[i].key) || strcmp(back.fields[i].value, m.fields[i].value))
			__builtin_trap();
	}
	return 0;
}
