#include "ticket.h"
