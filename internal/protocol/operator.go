package protocol

// CloseByOperator closes the connections of a user an operator
// disconnected (the admin API, the console); the reason is the operator's.
const CloseByOperator = 4012

// DisconnectByOperator is the close an operator sends when they give no reason.
var DisconnectByOperator = Disconnect{CloseByOperator, "disconnected by an operator"}
