#!/bin/sh
# placeholder, replaced below
exit 77
