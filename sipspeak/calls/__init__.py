"""Call control: the only package where sip/ and media/ meet."""
