module courier.local/tools/amqp091bench

go 1.26.8

require github.com/rabbitmq/amqp091-go v1.10.0
